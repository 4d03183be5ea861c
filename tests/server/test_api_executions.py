"""The executions API: list, detail, paging of large outputs, delete, retry, cancel, events."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from tests.server.conftest import LINEAR

Client = AsyncTestClient[Any]

FAILING = {
    "name": "failing",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {"name": "Double", "type": "set", "parameters": {"fields": {"double": "{{ json.n * 2 }}"}}},
        {"name": "Fail", "type": "stop_and_error", "parameters": {"message": "no good"}},
    ],
    "connections": [{"from": "Start", "to": "Double"}, {"from": "Double", "to": "Fail"}],
}

SLOW = {
    "name": "slow",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {"name": "Wait", "type": "wait", "parameters": {"seconds": 30}},
    ],
    "connections": [{"from": "Start", "to": "Wait"}],
}


async def workflow(client: Client, document: dict[str, Any]) -> str:
    response = await client.post("/api/v1/workflows", json=document)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


async def run(
    client: Client, workflow_id: str, items: Any = None, wait: bool = True
) -> dict[str, Any]:
    body = {"items": items} if items is not None else None
    response = await client.post(
        f"/api/v1/workflows/{workflow_id}/run", params={"wait": str(wait).lower()}, json=body
    )
    assert response.status_code in (200, 202), response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_status(client: Client, execution_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(200):
        record: dict[str, Any] = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        if record.get("status") in statuses:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution {execution_id} never reached {statuses}: {record}")


async def test_list_detail_delete(client: Client) -> None:
    workflow_id = await workflow(client, LINEAR)
    ids = [(await run(client, workflow_id, {"i": i}))["id"] for i in range(3)]
    failing = await workflow(client, FAILING)
    failed = await run(client, failing, {"n": 1})
    assert failed["status"] == "error" and failed["error"]["node"] == "Fail"
    page = (await client.get("/api/v1/executions", params={"limit": 2})).json()
    assert [e["id"] for e in page["data"]] == [failed["id"], ids[2]]
    rest = (await client.get("/api/v1/executions", params={"cursor": page["next_cursor"]})).json()
    assert [e["id"] for e in rest["data"]] == [ids[1], ids[0]] and rest["next_cursor"] is None
    only = (await client.get("/api/v1/executions", params={"status": "error"})).json()["data"]
    assert [(e["id"], e["error"], e["error_node"]) for e in only] == [
        (failed["id"], "no good", "Fail")
    ]
    mine = (await client.get("/api/v1/executions", params={"workflow_id": workflow_id})).json()
    assert len(mine["data"]) == 3 and "nodes" not in mine["data"][0]
    future = (
        await client.get("/api/v1/executions", params={"started_after": "2999-01-01T00:00:00Z"})
    ).json()
    assert future["data"] == []
    detail = (await client.get(f"/api/v1/executions/{ids[0]}")).json()
    assert detail["nodes"]["Tag"]["runs"][0]["outputs"]["main"] == [{"json": {"i": 0, "tag": "x"}}]
    assert (await client.delete(f"/api/v1/executions/{ids[0]}")).status_code == 204
    assert (await client.get(f"/api/v1/executions/{ids[0]}")).status_code == 404


async def test_retry_from_start_and_from_failed_node(client: Client) -> None:
    failing = await workflow(client, FAILING)
    original = await run(client, failing, [{"n": 1}, {"n": 2}])
    response = await client.post(
        f"/api/v1/executions/{original['id']}/retry",
        params={"wait": "true"},
        json={"from": "start"},
    )
    assert response.status_code == 200, response.text
    again = response.json()
    assert again["mode"] == "retry" and again["status"] == "error"
    assert again["nodes"]["Double"]["runs"][0]["input_items"] == 2
    response = await client.post(
        f"/api/v1/executions/{original['id']}/retry",
        params={"wait": "true"},
        json={"from": "failed_node"},
    )
    from_node = response.json()
    assert set(from_node["nodes"]) == {"Fail"}  # the nodes before it did not run again
    assert from_node["nodes"]["Fail"]["runs"][0]["input_items"] == 2
    summaries = (await client.get("/api/v1/executions", params={"mode": "retry"})).json()["data"]
    assert {s["retry_of"] for s in summaries} == {original["id"]}
    ok = await workflow(client, LINEAR)
    success = await run(client, ok, {"a": 1})
    response = await client.post(
        f"/api/v1/executions/{success['id']}/retry", json={"from": "failed_node"}
    )
    assert response.status_code == 422 and "did not fail in a node" in response.json()["detail"]


async def test_cancel_a_running_execution(client: Client) -> None:
    slow = await workflow(client, SLOW)
    started = await run(client, slow, wait=False)
    execution_id = started["id"]
    running = await wait_status(client, execution_id, "running")
    assert running["nodes"]["Wait"]["runs"][0]["status"] == "running"
    assert (await client.delete(f"/api/v1/executions/{execution_id}")).status_code == 409
    response = await client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert response.status_code == 202
    record = await wait_status(client, execution_id, "canceled")
    assert record["cancel_reason"] == "canceled through the API"
    again = await client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert again.status_code == 409 and "is not running (canceled)" in again.json()["detail"]


async def test_large_outputs_are_spilled_and_paged(config: Config, tmp_path: Path) -> None:
    config = replace(config, spill_threshold_bytes=4000, output_page_items=10)
    items = [{"i": i, "pad": "p" * 50} for i in range(2500)]
    async with AsyncTestClient(create_app(config)) as client:
        workflow_id = await workflow(client, LINEAR)
        record = await run(client, workflow_id, items)
        execution_id = record["id"]
        files = list((config.executions_dir / execution_id).glob("*.jsonl"))
        assert len(files) == 2  # Start's and Tag's outputs
        tag = record["nodes"]["Tag"]["runs"][0]
        assert len(tag["outputs"]["main"]) == 10
        assert tag["outputs"]["main"][3]["json"] == {"i": 3, "pad": "p" * 50, "tag": "x"}
        assert tag["truncated"]["main"]["total"] == 2500
        url = tag["truncated"]["main"]["next"]
        collected = list(tag["outputs"]["main"])
        while url:
            page = (await client.get(url.replace("limit=10", "limit=700"))).json()
            collected += page["items"]
            url = page["next"]
        assert [c["json"]["i"] for c in collected] == list(range(2500))
        page = (
            await client.get(
                f"/api/v1/executions/{execution_id}/nodes/Tag/runs/0/outputs/main",
                params={"offset": 1999, "limit": 2},
            )
        ).json()
        assert [p["json"]["i"] for p in page["items"]] == [1999, 2000] and page["total"] == 2500
        detail = (
            await client.get(f"/api/v1/executions/{execution_id}", params={"items": 2})
        ).json()
        assert len(detail["nodes"]["Start"]["runs"][0]["outputs"]["main"]) == 2
        missing = await client.get(
            f"/api/v1/executions/{execution_id}/nodes/Nope/runs/0/outputs/main"
        )
        assert missing.status_code == 404
        assert (await client.delete(f"/api/v1/executions/{execution_id}")).status_code == 204
        assert not (config.executions_dir / execution_id).exists()


async def test_events_of_one_execution(client: Client) -> None:
    document = json.loads(json.dumps(SLOW))
    document["nodes"][1]["parameters"]["seconds"] = 0.3
    slow = await workflow(client, document)
    execution_id = (await run(client, slow, wait=False))["id"]
    response = await client.get(f"/api/v1/executions/{execution_id}/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    kinds = [(e["event"], e.get("node")) for e in events]
    assert kinds[-1] == ("execution_finished", None) and events[-1]["status"] == "success"
    assert ("node_finished", "Wait") in kinds
    # once finished, the stream is the final state at once
    response = await client.get(f"/api/v1/executions/{execution_id}/events")
    assert "event: execution_finished" in response.text and '"status": "success"' in response.text
