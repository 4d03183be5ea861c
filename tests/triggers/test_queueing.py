"""Concurrency limits: production executions beyond the limits wait in the database, are
listed, start first in first out, and survive a restart. Error workflows start for failed
production executions, never in a loop."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.triggers.conftest import Client, Serve, create, executions, record, settle, webhook_flow


def slow(path: str, seconds: float = 0.4, name: str | None = None) -> dict[str, Any]:
    """A webhook workflow holding its slot for ``seconds`` (below the wait threshold)."""
    return webhook_flow(
        name or path,
        path=path,
        extra=[{"name": "Hold", "type": "wait", "parameters": {"seconds": seconds}}],
    )


async def post_many(client: Client, path: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = await client.post(f"/webhook/{path}", json={"n": n})
        assert response.status_code == 200, response.text
        ids.append(response.json()["execution_id"])
    return ids


async def queued_are(client: Client, expected: list[str]) -> None:
    """The queued executions listed become ``expected`` (a started one is marked running by
    the writer's next commit)."""
    for _ in range(100):
        listed = [e["id"] for e in await executions(client, status="queued")]
        if sorted(listed) == sorted(expected):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"queued: {listed}, expected {expected}")


def finished(data: dict[str, Any]) -> str:
    return str(data["finished_at"])


async def test_the_global_limit_queues_first_in_first_out(serve: Serve) -> None:
    async with serve(concurrency_limit=1, wait_threshold_seconds=5) as client:
        await create(client, slow("a"))
        ids = await post_many(client, "a", 3)
        await queued_are(client, ids[1:])  # visible while they wait
        state = (await client.get("/api/v1/queue")).json()
        assert state["running"] == 1 and state["queued"] == 2
        assert state["concurrency_limit"] == 1
        records = [await settle(client, i) for i in ids]
        assert all(r["status"] == "success" for r in records)
        ends = [finished(r) for r in records]
        assert ends == sorted(ends)  # one after the other, in order
        for earlier, later in itertools.pairwise(records):
            hold_started = later["nodes"]["Hold"]["runs"][0]["started_at"]
            assert hold_started >= finished(earlier)


async def test_the_per_workflow_limit_lets_other_workflows_run(serve: Serve) -> None:
    async with serve(workflow_concurrency_limit=1, wait_threshold_seconds=5) as client:
        await create(client, slow("a"))
        await create(client, slow("b"))
        first, second = await post_many(client, "a", 2)
        (other,) = await post_many(client, "b", 1)
        await queued_are(client, [second])
        assert (await record(client, other))["status"] == "running"
        a1, a2, b = [await settle(client, i) for i in (first, second, other)]
        assert b["finished_at"] < a2["finished_at"]  # b did not wait for a's queue
        assert a2["nodes"]["Hold"]["runs"][0]["started_at"] >= a1["finished_at"]


async def test_respond_modes_wait_in_the_queue_too(serve: Serve) -> None:
    async with serve(concurrency_limit=1, wait_threshold_seconds=5) as client:
        await create(client, slow("a", 0.3))
        document = webhook_flow("b", path="b", respond="last_node")
        await create(client, document)
        await post_many(client, "a", 1)
        response = await client.post("/webhook/b", json={"x": 1})  # queued, then answered
        assert response.status_code == 200 and response.json()["body"] == {"x": 1}


async def test_test_webhooks_are_not_limited(serve: Serve) -> None:
    async with serve(concurrency_limit=1, wait_threshold_seconds=5) as client:
        await create(client, slow("a", 1))
        await post_many(client, "a", 2)  # one runs, one waits
        draft = webhook_flow("t", path="t", respond="last_node")
        workflow_id = await create(client, draft, active=False)
        await client.post(f"/api/v1/workflows/{workflow_id}/test-webhook")
        started = asyncio.get_running_loop().time()
        response = await client.post("/webhook-test/t", json={})
        assert response.status_code == 200
        assert asyncio.get_running_loop().time() - started < 0.8  # did not queue


async def test_queued_executions_survive_a_restart(serve: Serve) -> None:
    settings = {"concurrency_limit": 1, "wait_threshold_seconds": 5, "shutdown_timeout": 0.1}
    async with serve(**settings) as client:
        await create(client, slow("a", 3))
        ids = await post_many(client, "a", 3)
        await queued_are(client, ids[1:])
    async with serve(concurrency_limit=2, wait_threshold_seconds=5) as client:
        first = await record(client, ids[0])
        assert first["status"] == "crashed"  # stopped by the shutdown deadline
        for execution_id in ids[1:]:
            data = await settle(client, execution_id, timeout=8)
            assert data["status"] == "success" and data["mode"] == "webhook"
            item = data["nodes"]["Hook"]["runs"][0]["outputs"]["main"][0]["json"]
            assert item["body"]["n"] == ids.index(execution_id)


# -- error workflows --------------------------------------------------------------------------
HANDLER = {
    "name": "Error handler",
    "nodes": [
        {"name": "On error", "type": "error_trigger"},
        {"name": "Note", "type": "set", "parameters": {"fields": {"handled": True}}},
    ],
    "connections": [{"from": "On error", "to": "Note"}],
}


def failing(error_workflow: str, path: str = "fail") -> dict[str, Any]:
    document = webhook_flow(
        "failing",
        path=path,
        extra=[{"name": "Boom", "type": "stop_and_error", "parameters": {"message": "boom"}}],
    )
    document["settings"] = {"error_workflow": error_workflow}
    return document


async def error_runs(client: Client, count: int) -> list[dict[str, Any]]:
    for _ in range(250):
        found = await executions(client, mode="error")
        if len(found) >= count and all(e["status"] not in ("running",) for e in found):
            return [await record(client, e["id"]) for e in found]
        await asyncio.sleep(0.02)
    raise AssertionError("the error workflow did not run")


async def test_a_failed_webhook_execution_starts_the_error_workflow(client: Client) -> None:
    handler_id = await create(client, HANDLER, active=False)
    workflow_id = await create(client, failing("Error handler"))
    execution_id = (await client.post("/webhook/fail")).json()["execution_id"]
    assert (await settle(client, execution_id))["status"] == "error"
    (run,) = await error_runs(client, 1)
    assert run["workflow"]["id"] == handler_id and run["status"] == "success"
    summary = run["nodes"]["On error"]["runs"][0]["outputs"]["main"][0]["json"]
    assert summary["execution"]["id"] == execution_id
    assert summary["execution"]["error"]["message"] == "boom"
    assert summary["execution"]["error"]["node"] == "Boom"
    assert summary["execution"]["last_node"] == "Boom"
    assert summary["execution"]["mode"] == "webhook"
    assert summary["workflow"] == {"id": workflow_id, "name": "failing"}
    # a manual run that fails starts no error workflow
    response = await client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": True})
    assert response.json()["status"] == "error"
    await asyncio.sleep(0.1)
    assert len(await executions(client, mode="error")) == 1


async def test_an_error_workflow_that_fails_starts_no_other(client: Client) -> None:
    loop = {
        "name": "Loop",
        "nodes": [
            {"name": "On error", "type": "error_trigger"},
            {"name": "Fail", "type": "stop_and_error", "parameters": {"message": "again"}},
        ],
        "connections": [{"from": "On error", "to": "Fail"}],
        "settings": {"error_workflow": "Loop"},
    }
    await create(client, loop, active=False)
    await create(client, failing("Loop"))
    await client.post("/webhook/fail")
    (run,) = await error_runs(client, 1)
    assert run["status"] == "error"
    await asyncio.sleep(0.2)
    assert len(await executions(client, mode="error")) == 1
