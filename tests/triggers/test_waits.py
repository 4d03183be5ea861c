"""Long waits park the execution in the database and resume on time, by their resume URL,
once, and across a restart (the app's wait_threshold_seconds is 0.5 s in these tests)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from flowlite.waits import NotWaiting
from tests.triggers.conftest import (
    Client,
    Serve,
    create,
    executions,
    in_app,
    record,
    server,
    settle,
    webhook_flow,
)


def waiting(seconds: float, path: str = "orders") -> dict[str, Any]:
    return webhook_flow(
        path=path,
        extra=[
            {
                "name": "Before",
                "type": "set",
                "parameters": {"fields": {"resume": "{{ execution.resume_url }}"}},
            },
            {"name": "Wait", "type": "wait", "parameters": {"seconds": seconds}},
            {"name": "After", "type": "set", "parameters": {"fields": {"after": True}}},
        ],
    )


async def status_becomes(
    client: Client, execution_id: str, status: str, timeout: float = 5
) -> None:
    for _ in range(int(timeout / 0.02)):
        if (await record(client, execution_id))["status"] == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{execution_id} never became {status}")


def seconds_between(start: str, end: str) -> float:
    def parse(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


async def test_a_long_wait_parks_and_resumes_on_time(client: Client) -> None:
    await create(client, waiting(1.0))
    response = await client.post("/webhook/orders", json={"n": 1})
    execution_id = response.json()["execution_id"]
    await status_becomes(client, execution_id, "waiting")
    parked = await record(client, execution_id)
    assert parked["wait"]["node"] == "Wait" and parked["wait"]["until"]
    assert parked["nodes"]["Wait"]["runs"][0]["status"] == "waiting"
    assert "After" not in parked["nodes"]
    assert server(client).runner.running_count == 0  # no worker holds it
    data = await settle(client, execution_id, timeout=5)
    assert data["status"] == "success"
    after = data["nodes"]["After"]["runs"][0]
    assert after["outputs"]["main"][0]["json"]["after"] is True
    assert after["outputs"]["main"][0]["json"]["body"] == {"n": 1}
    late = seconds_between(parked["wait"]["until"], after["started_at"])
    assert -0.05 < late < 1.0  # resumed on time (the loop wakes for the next due wait)


async def test_a_short_wait_sleeps_in_memory(client: Client) -> None:
    await create(client, waiting(0.2))
    response = await client.post("/webhook/orders")
    data = await settle(client, response.json()["execution_id"])
    assert data["status"] == "success" and data.get("wait") is None
    assert data["nodes"]["Wait"]["runs"][0]["duration_ms"] >= 200


async def test_resume_by_webhook_once(client: Client) -> None:
    await create(client, waiting(3600))
    execution_id = (await client.post("/webhook/orders")).json()["execution_id"]
    await status_becomes(client, execution_id, "waiting")
    before = (await record(client, execution_id))["nodes"]["Before"]["runs"][0]
    resume_url = before["outputs"]["main"][0]["json"]["resume"]
    assert resume_url.endswith(f"/webhook-waiting/{execution_id}")
    response = await client.post(f"/webhook-waiting/{execution_id}?ok=1", json={"approved": True})
    assert response.status_code == 200 and response.json()["execution_id"] == execution_id
    data = await settle(client, execution_id)
    assert data["status"] == "success"
    item = data["nodes"]["After"]["runs"][0]["outputs"]["main"][0]["json"]
    assert item["body"] == {"approved": True} and item["query"] == {"ok": "1"}
    again = await client.post(f"/webhook-waiting/{execution_id}", json={})
    assert again.status_code == 409 and "not waiting" in again.json()["detail"]
    assert (await client.post("/webhook-waiting/NOSUCHEXECUTION")).status_code == 404


async def test_concurrent_resumes_resume_once(client: Client) -> None:
    await create(client, waiting(3600))
    execution_id = (await client.post("/webhook/orders")).json()["execution_id"]
    await status_becomes(client, execution_id, "waiting")
    waits = server(client).triggers.waits

    async def twice() -> list[Any]:
        return list(
            await asyncio.gather(
                waits.resume(execution_id, [{"json": {"by": "a"}}]),
                waits.resume(execution_id, [{"json": {"by": "b"}}]),
                return_exceptions=True,
            )
        )

    results = await in_app(client, twice)
    assert sum(isinstance(r, NotWaiting) for r in results) == 1
    data = await settle(client, execution_id)
    assert data["status"] == "success" and len(data["nodes"]["After"]["runs"]) == 1


async def test_waits_across_a_restart(serve: Serve) -> None:
    async with serve() as client:
        await create(client, waiting(1.2, path="due"))
        await create(client, waiting(2.5, path="later"))
        due = (await client.post("/webhook/due")).json()["execution_id"]
        later = (await client.post("/webhook/later")).json()["execution_id"]
        await status_becomes(client, due, "waiting")
        await status_becomes(client, later, "waiting")
    await asyncio.sleep(1.3)  # the first wait ends while the server is down
    async with serve() as client:
        assert (await settle(client, due, timeout=3))["status"] == "success"
        assert (await record(client, later))["status"] == "waiting"
        data = await settle(client, later, timeout=4)
        assert data["status"] == "success"
        assert data["nodes"]["Wait"]["runs"][0]["status"] == "success"
        assert len(await executions(client, status="waiting")) == 0


async def test_manual_runs_are_not_parked(client: Client) -> None:
    document = waiting(0.7)
    workflow_id = await create(client, document, active=False)
    response = await client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": True})
    data = response.json()
    assert data["status"] == "success" and data.get("wait") is None
    assert data["nodes"]["Wait"]["runs"][0]["duration_ms"] >= 700
