"""The runner's recording rules: `settings.save`, and a record that is not JSON."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from flowlite.registry import Registry
from flowlite.sdk import Item, NodeContext, NodeType, Outputs
from tests.server.conftest import LINEAR


class Opaque(NodeType):
    """Outputs a value JSON cannot hold (a plugin bug the server must survive)."""

    type = "test_opaque"
    description = "Outputs an object that is not JSON (tests only)."

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {"main": [{"json": {"value": object()}}]}


async def test_save_none_keeps_no_execution(client: AsyncTestClient[Any]) -> None:
    document = {**LINEAR, "settings": {"save": {"manual": "none"}}}
    workflow_id = (await client.post("/api/v1/workflows", json=document)).json()["id"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"})
    record = response.json()
    assert response.status_code == 200 and record["status"] == "success"
    assert record["nodes"]["Tag"]["runs"][0]["outputs"]["main"][0]["json"] == {"tag": "x"}
    assert (await client.get("/api/v1/executions")).json()["data"] == []
    assert (await client.get(f"/api/v1/executions/{record['id']}")).status_code == 404


async def test_a_record_that_is_not_json_is_stored_without_outputs(config: Config) -> None:
    registry = Registry.default()
    registry.add(Opaque)
    document = {
        "name": "opaque",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {"name": "O", "type": "test_opaque"},
        ],
        "connections": [{"from": "Start", "to": "O"}],
    }
    async with AsyncTestClient(create_app(config, registry=registry)) as client:
        workflow_id = (await client.post("/api/v1/workflows", json=document)).json()["id"]
        response = await client.post(
            f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"}
        )
        assert response.status_code == 200, response.text
        record = response.json()
        assert record["status"] == "success"
        assert record["nodes"]["O"]["runs"][0]["outputs"] == {}
        assert "could not be stored as JSON" in record["storage_error"]
        listed = (await client.get("/api/v1/executions")).json()["data"]
        assert [e["status"] for e in listed] == ["success"]
