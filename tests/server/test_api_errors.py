"""Bad input on every endpoint: a clear 4xx problem (RFC 9457), and nothing changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from tests.server.conftest import LINEAR

Client = AsyncTestClient[Any]


@pytest.fixture
async def small_client(config: Config) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(replace(config, max_body_bytes=64 * 1024))) as client:
        yield client


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


async def snapshot(client: Client) -> tuple[Any, ...]:
    workflows = (await client.get("/api/v1/workflows")).json()
    executions = (await client.get("/api/v1/executions")).json()
    return json.dumps(workflows, sort_keys=True), json.dumps(executions, sort_keys=True)


async def test_bad_workflow_bodies(small_client: Client) -> None:
    client = small_client
    created = (await client.post("/api/v1/workflows", json=LINEAR)).json()
    workflow_id = created["id"]
    before = await snapshot(client)
    url = "/api/v1/workflows"
    for target in (url, f"{url}/{workflow_id}"):
        send = client.post if target == url else client.put
        body = assert_problem(await send(target, json={**LINEAR, "name": 5}), 422, "name")
        assert body["problems"][0]["location"] == "name"
        body = assert_problem(await send(target, json={**LINEAR, "colour": "red"}), 422)
        assert {"location": "colour", "message": "unknown field"} in body["problems"]
        assert_problem(await send(target, json=[1, 2]), 422, "must be an object")
        assert_problem(await send(target, content=b"{nope"), 400, "not valid JSON")
        assert_problem(await send(target, content=b""), 400, "empty")
        assert_problem(
            await send(target, content=b"a: [", headers={"content-type": "application/yaml"}),
            400,
            "not valid YAML",
        )
        assert_problem(
            await send(target, content=b"hello", headers={"content-type": "text/plain"}),
            415,
            "application/json",
        )
        huge = {**LINEAR, "description": "x" * 100_000}
        assert_problem(await send(target, json=huge), 413, "larger than")
        invalid = {**LINEAR, "nodes": [{"name": "A", "type": "set", "parameters": {"fields": 1}}]}
        assert_problem(await send(target, json=invalid), 422, "invalid")
    assert_problem(await client.put(f"{url}/missing", json=LINEAR), 404, "missing")
    assert await snapshot(client) == before
    assert (await client.get(f"{url}/{workflow_id}")).json()["version"] == 1


async def test_bad_parameters_and_small_bodies(client: Client) -> None:
    created = (await client.post("/api/v1/workflows", json=LINEAR)).json()
    workflow_id = created["id"]
    before = await snapshot(client)
    url = f"/api/v1/workflows/{workflow_id}"
    assert_problem(await client.patch(url, json={"active": "yes"}), 400, "active")
    assert_problem(await client.patch(url, json={"active": True, "colour": 1}), 400, "colour")
    assert_problem(await client.patch(url, json={}), 400, "active")
    for params in ({"limit": 0}, {"limit": "many"}, {"sort": "size"}, {"offset": -1}):
        assert_problem(await client.get("/api/v1/workflows", params=params), 400)
    assert_problem(await client.get(f"{url}/versions/diff", params={"from": 1}), 400, "to")
    assert_problem(await client.get(f"{url}/versions/diff", params={"from": 1, "to": 9}), 404)
    assert_problem(await client.get(f"{url}/versions/0"), 400)
    assert_problem(await client.post(f"{url}/versions/5/restore"), 404, "no version 5")
    assert_problem(await client.post(f"{url}/run", json={"items": 5}), 400, "items")
    assert_problem(await client.post(f"{url}/run", json={"item": []}), 400, "item")
    assert_problem(await client.post(f"{url}/run", json={"start": "Nope"}), 422, "Nope")
    assert_problem(await client.post("/api/v1/workflows/missing/run"), 404, "missing")
    executions = "/api/v1/executions"
    for params in (
        {"status": "sleeping"},
        {"mode": "magic"},
        {"started_after": "yesterday"},
        {"started_before": "2026-13-45"},
        {"limit": 1000},
    ):
        assert_problem(await client.get(executions, params=params), 400)
    assert_problem(await client.get(f"{executions}/nope"), 404, "nope")
    assert_problem(await client.get(f"{executions}/nope", params={"items": -1}), 400)
    assert_problem(await client.delete(f"{executions}/nope"), 404)
    assert_problem(await client.post(f"{executions}/nope/cancel"), 404)
    assert_problem(await client.post(f"{executions}/nope/retry"), 404)
    assert_problem(await client.get(f"{executions}/nope/events"), 404)
    assert_problem(
        await client.get(f"{executions}/nope/nodes/A/runs/0/outputs/main", params={"offset": -5}),
        400,
    )
    run = (await client.post(f"{url}/run", params={"wait": "true"})).json()
    before = await snapshot(client)
    assert_problem(
        await client.post(f"{executions}/{run['id']}/retry", json={"from": "middle"}), 400, "from"
    )
    assert_problem(
        await client.post(f"{executions}/{run['id']}/retry", json={"from": "start", "x": 1}),
        400,
        "x",
    )
    assert_problem(await client.patch(executions), 405, "PATCH")
    assert_problem(await client.get("/api/v1/nothing"), 404, "/api/v1/nothing")
    assert await snapshot(client) == before
