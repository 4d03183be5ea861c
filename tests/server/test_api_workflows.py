"""The workflows API through Litestar's AsyncTestClient, on a real SQLite file."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from litestar.testing import AsyncTestClient

from tests.server.conftest import LINEAR

Client = AsyncTestClient[Any]


def doc(name: str = "linear", tag: str = "x") -> dict[str, Any]:
    document = copy.deepcopy(LINEAR)
    document["name"] = name
    document["nodes"][1]["parameters"] = {"fields": {"tag": tag}}
    return document


async def create(client: Client, document: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/workflows", json=document or doc())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_read_update_delete(client: Client) -> None:
    created = await create(client)
    assert created["version"] == 1 and created["document"] == doc()
    workflow_id = created["id"]
    got = (await client.get(f"/api/v1/workflows/{workflow_id}")).json()
    assert got == created
    response = await client.put(f"/api/v1/workflows/{workflow_id}", json=doc("renamed", "y"))
    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["name"] == "renamed"
    response = await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
    assert response.status_code == 200 and response.json()["active"] is True
    assert (await client.delete(f"/api/v1/workflows/{workflow_id}")).status_code == 204
    response = await client.get(f"/api/v1/workflows/{workflow_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert workflow_id in response.json()["detail"]


async def test_yaml_body(client: Client) -> None:
    text = yaml.safe_dump(doc("from yaml"), sort_keys=False)
    response = await client.post(
        "/api/v1/workflows", content=text, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["document"] == doc("from yaml")


async def test_list_filters_sort_and_pages(client: Client) -> None:
    for name in ["b", "a", "c"]:
        await create(client, doc(name))
    page = (await client.get("/api/v1/workflows", params={"sort": "name", "limit": 2})).json()
    assert [w["name"] for w in page["data"]] == ["a", "b"] and page["total"] == 3
    page = (await client.get("/api/v1/workflows", params={"sort": "name", "offset": 2})).json()
    assert [w["name"] for w in page["data"]] == ["c"]
    page = (await client.get("/api/v1/workflows", params={"q": "B"})).json()
    assert [w["name"] for w in page["data"]] == ["b"]
    assert (await client.get("/api/v1/workflows", params={"active": "true"})).json()["total"] == 0
    assert "document" not in page["data"][0]


async def test_versions_diff_restore(client: Client) -> None:
    workflow_id = (await create(client))["id"]
    await client.put(f"/api/v1/workflows/{workflow_id}", json=doc(tag="changed"))
    versions = (await client.get(f"/api/v1/workflows/{workflow_id}/versions")).json()
    assert [(v["number"], v["current"]) for v in versions] == [(2, True), (1, False)]
    one = (await client.get(f"/api/v1/workflows/{workflow_id}/versions/1")).json()
    assert one["document"] == doc()
    diff = (
        await client.get(
            f"/api/v1/workflows/{workflow_id}/versions/diff", params={"from": 1, "to": 2}
        )
    ).json()
    assert '-          "tag": "x"' in diff["diff"] and '+          "tag": "changed"' in diff["diff"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/versions/1/restore")
    assert response.status_code == 201 and response.json()["version"] == 3
    assert response.json()["document"] == doc()
    missing = await client.get(f"/api/v1/workflows/{workflow_id}/versions/7")
    assert missing.status_code == 404 and "no version 7" in missing.json()["detail"]


async def test_invalid_workflow_lists_every_problem(client: Client) -> None:
    bad = {
        "name": "bad",
        "nodes": [
            {"name": "A", "type": "no_such_type"},
            {"name": "B", "type": "set", "parameters": {"fields": 3}},
        ],
        "connections": [{"from": "A", "to": "Nowhere"}],
    }
    response = await client.post("/api/v1/workflows", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422 and body["title"] and body["type"].endswith("workflow-invalid")
    problems = {(p["location"], p["message"]) for p in body["problems"]}
    assert len(problems) >= 3
    assert any("no_such_type" in m for _, m in problems)
    assert any("Nowhere" in m for _, m in problems)
    assert "problem" in body["detail"] or "invalid" in body["detail"]
    assert (await client.get("/api/v1/workflows")).json()["total"] == 0


async def test_run_and_wait_returns_the_record(client: Client) -> None:
    workflow_id = (await create(client))["id"]
    response = await client.post(
        f"/api/v1/workflows/{workflow_id}/run",
        params={"wait": "true"},
        json={"items": [{"n": 1}, {"json": {"n": 2}}]},
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["status"] == "success" and record["mode"] == "manual"
    assert record["workflow"] == {"id": workflow_id, "name": "linear", "version": 1}
    outputs = record["nodes"]["Tag"]["runs"][0]["outputs"]["main"]
    assert [o["json"] for o in outputs] == [{"n": 1, "tag": "x"}, {"n": 2, "tag": "x"}]
    started = await client.post(f"/api/v1/workflows/{workflow_id}/run")
    assert started.status_code == 202
    assert started.json()["url"] == f"/api/v1/executions/{started.json()['id']}"


async def test_a_run_right_after_a_save_runs_the_new_version(client: Client) -> None:
    workflow_id = (await create(client))["id"]
    url = f"/api/v1/workflows/{workflow_id}/run"
    for tag in ("x", "second", "third"):
        if tag != "x":
            await client.put(f"/api/v1/workflows/{workflow_id}", json=doc(tag=tag))
        record = (await client.post(url, params={"wait": "true"}, json={"items": {"n": 1}})).json()
        assert record["nodes"]["Tag"]["runs"][0]["outputs"]["main"][0]["json"]["tag"] == tag
    assert record["workflow"]["version"] == 3
    await client.delete(f"/api/v1/workflows/{workflow_id}")
    assert (await client.post(url)).status_code == 404
