"""Webhooks over real HTTP (the ASGI app): response modes, paths, methods, conflicts, bodies,
limits, CORS, test URLs and re-registration on save, deactivation and deletion."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from tests.triggers.conftest import (
    Client,
    create,
    executions,
    in_app,
    record,
    server,
    settle,
    webhook_flow,
)

SET_TAG = {"name": "Tag", "type": "set", "parameters": {"fields": {"tag": "done"}}}


def reply(respond_with: str = "first_item", **parameters: Any) -> dict[str, Any]:
    return {
        "name": "Reply",
        "type": "respond_to_webhook",
        "parameters": {"respond_with": respond_with, **parameters},
    }


# -- response modes ---------------------------------------------------------------------------
async def test_immediately_answers_with_the_stored_execution_and_runs_it(client: Client) -> None:
    await create(client, webhook_flow(extra=[SET_TAG], response_code=202))
    response = await client.post("/webhook/orders?x=1&x=2&y=", json={"total": 120})
    assert response.status_code == 202
    answer = response.json()
    assert answer["message"] == "Workflow was started"
    data = await settle(client, answer["execution_id"])
    assert data["status"] == "success" and data["mode"] == "webhook"
    item = data["nodes"]["Hook"]["runs"][0]["outputs"]["main"][0]["json"]
    assert item["method"] == "POST" and item["path"] == "orders" and item["params"] == {}
    assert item["body"] == {"total": 120}
    assert item["query"] == {"x": ["1", "2"], "y": ""}
    assert item["headers"]["content-type"] == "application/json"
    assert data["nodes"]["Tag"]["runs"][0]["outputs"]["main"][0]["json"]["tag"] == "done"


async def test_last_node_answers_with_the_last_output(client: Client) -> None:
    await create(client, webhook_flow(path="first", respond="last_node", extra=[SET_TAG]))
    await create(
        client,
        webhook_flow(
            "all", path="all", respond="last_node", response_data="all_items", extra=[SET_TAG]
        ),
    )
    await create(
        client,
        webhook_flow(
            "none",
            path="none",
            respond="last_node",
            response_data="no_data",
            response_code=204,
            extra=[SET_TAG],
        ),
    )
    response = await client.post("/webhook/first", json={"n": 1})
    assert response.status_code == 200 and response.json()["tag"] == "done"
    assert response.json()["body"] == {"n": 1}
    response = await client.post("/webhook/all", json={})
    assert isinstance(response.json(), list) and response.json()[0]["tag"] == "done"
    response = await client.post("/webhook/none", json={})
    assert response.status_code == 204 and response.content == b""


async def test_last_node_answers_500_when_the_workflow_fails(client: Client) -> None:
    fail = {"name": "Fail", "type": "stop_and_error", "parameters": {"message": "secret detail"}}
    await create(client, webhook_flow(respond="last_node", extra=[fail]))
    response = await client.post("/webhook/orders", json={})
    assert response.status_code == 500
    assert "secret detail" not in response.text  # the caller learns the id, not the internals
    data = await record(client, response.json()["execution_id"])
    assert data["status"] == "error" and data["error"]["message"] == "secret detail"


async def test_respond_node_answers_mid_workflow(client: Client) -> None:
    # the wait after the answer parks the execution (longer than the 0.5 s threshold)
    slow = {"name": "Slow", "type": "wait", "parameters": {"seconds": 1.5}}
    document = webhook_flow(
        respond="respond_node",
        extra=[
            reply("json", body={"ok": "{{ json.body.n }}"}, status=201, headers={"X-A": "b"}),
            slow,
        ],
    )
    await create(client, document)
    started = asyncio.get_running_loop().time()
    response = await client.post("/webhook/orders", json={"n": 7})
    took = asyncio.get_running_loop().time() - started
    assert response.status_code == 201 and response.json() == {"ok": 7}
    assert response.headers["x-a"] == "b"
    assert took < 1.5  # answered before the wait after the respond node
    (summary,) = await executions(client)
    assert summary["status"] in ("running", "waiting")
    data = await settle(client, summary["id"])
    assert data["status"] == "success" and data["response"]["status"] == 201


async def test_respond_node_redirect_text_and_end_without_answer(client: Client) -> None:
    await create(
        client,
        webhook_flow(
            "r",
            path="go",
            method="GET",
            respond="respond_node",
            extra=[reply("redirect", location="https://example.invalid/x")],
        ),
    )
    await create(
        client,
        webhook_flow("t", path="text", respond="respond_node", extra=[reply("text", body="hi")]),
    )
    await create(client, webhook_flow("n", path="none", respond="respond_node", extra=[SET_TAG]))
    response = await client.get("/webhook/go", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "https://example.invalid/x"
    response = await client.post("/webhook/text")
    assert response.text == "hi" and response.headers["content-type"].startswith("text/plain")
    response = await client.post("/webhook/none")  # ended without a respond node: 500
    assert response.status_code == 500 and "execution_id" in response.json()
    assert "no respond_to_webhook node ran" in response.json()["detail"]


async def test_head_answers_without_a_body(client: Client) -> None:
    await create(client, webhook_flow(method="HEAD", respond="last_node"))
    response = await client.head("/webhook/orders")
    assert response.status_code == 200 and response.content == b""


# -- paths, methods and conflicts ---------------------------------------------------------------
async def test_path_parameters_and_literals_win(client: Client) -> None:
    await create(
        client,
        webhook_flow("param", path="/shop/:shop/orders/:id/", respond="last_node"),
    )
    await create(client, webhook_flow("literal", path="shop/main/orders/new", respond="last_node"))
    response = await client.post("/webhook/shop/acme/orders/42", json={})
    assert response.json()["params"] == {"shop": "acme", "id": "42"}
    response = await client.post("/webhook/shop/main/orders/new", json={})
    assert response.json()["params"] == {}  # the literal route, not the parameters
    response = await client.post("/webhook/shop/acme/orders", json={})
    assert response.status_code == 404
    assert "no active workflow has a webhook on POST /webhook/shop/acme/orders" in response.text


async def test_methods_are_part_of_the_route(client: Client) -> None:
    await create(client, webhook_flow("get", method="GET", respond="last_node"))
    await create(client, webhook_flow("put", method="PUT", respond="last_node"))
    assert (await client.get("/webhook/orders")).json()["method"] == "GET"
    assert (await client.put("/webhook/orders", json={})).json()["method"] == "PUT"
    response = await client.delete("/webhook/orders")
    assert response.status_code == 405 and response.headers["allow"] == "GET, PUT"


async def test_conflicting_paths_are_refused_with_the_other_workflow_named(
    client: Client,
) -> None:
    first = await create(client, webhook_flow("first", path="orders/:id"))
    second = await create(client, webhook_flow("second", path="orders/:number"), active=False)
    response = await client.patch(f"/api/v1/workflows/{second}", json={"active": True})
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "'first'" in detail and first in detail and "orders/:id" in detail
    assert (await client.get(f"/api/v1/workflows/{second}")).json()["active"] is False
    # another method on the same path is no conflict
    other = await create(client, webhook_flow("third", path="orders/:id", method="GET"))
    assert other
    # saving an active workflow onto a taken path is refused, and nothing is stored
    put = await client.put(
        f"/api/v1/workflows/{other}", json=webhook_flow("third", path="orders/:x", method="GET")
    )
    assert put.status_code == 200  # GET orders/:x: still no conflict
    put = await client.put(
        f"/api/v1/workflows/{other}", json=webhook_flow("third", path="orders/:x", method="POST")
    )
    assert put.status_code == 409
    assert (await client.get(f"/api/v1/workflows/{other}")).json()["version"] == 2


async def test_save_deactivate_and_delete_re_register(client: Client) -> None:
    workflow_id = await create(client, webhook_flow(path="v1", respond="last_node"))
    assert (await client.post("/webhook/v1")).status_code == 200
    response = await client.put(
        f"/api/v1/workflows/{workflow_id}", json=webhook_flow(path="v2", respond="last_node")
    )
    assert response.status_code == 200
    assert (await client.post("/webhook/v1")).status_code == 404
    assert (await client.post("/webhook/v2")).status_code == 200
    await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": False})
    assert (await client.post("/webhook/v2")).status_code == 404
    await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
    assert (await client.post("/webhook/v2")).status_code == 200
    triggers = (await client.get(f"/api/v1/workflows/{workflow_id}/triggers")).json()
    assert triggers["active"] is True and triggers["webhooks"][0]["path"] == "v2"
    assert triggers["webhooks"][0]["url"].endswith("/webhook/v2")
    assert (await client.delete(f"/api/v1/workflows/{workflow_id}")).status_code == 204
    assert (await client.post("/webhook/v2")).status_code == 404
    # a freed path can be claimed again
    await create(client, webhook_flow("again", path="v2"))


async def test_active_webhooks_come_back_after_a_restart(serve: Any) -> None:
    async with serve() as client:
        await create(client, webhook_flow(path="kept", respond="last_node"))
        await create(client, webhook_flow("off", path="off"), active=False)
    async with serve() as client:
        assert (await client.post("/webhook/kept", json={})).status_code == 200
        assert (await client.post("/webhook/off", json={})).status_code == 404


# -- bodies -----------------------------------------------------------------------------------
async def test_bodies_are_parsed_by_content_type(client: Client) -> None:
    await create(client, webhook_flow(respond="last_node"))
    form = await client.post("/webhook/orders", data={"a": "1", "b": ["x", "y"]})
    assert form.json()["body"] == {"a": "1", "b": ["x", "y"]}
    text = await client.post(
        "/webhook/orders", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert text.json()["body"] == "hello"
    raw = await client.post(
        "/webhook/orders",
        content=b"\x00\x01",
        headers={"content-type": "application/octet-stream"},
    )
    assert raw.json()["body"] is None
    bad = await client.post(
        "/webhook/orders", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "not valid application/json" in bad.json()["detail"]


async def test_raw_and_multipart_bodies_become_binary(client: Client) -> None:
    await create(client, webhook_flow(respond="immediately"))
    response = await client.post(
        "/webhook/orders",
        data={"note": "hi"},
        files={"upload": ("report.csv", b"a,b\n1,2\n", "text/csv")},
    )
    data = await settle(client, response.json()["execution_id"])
    item = data["nodes"]["Hook"]["runs"][0]["outputs"]["main"][0]
    assert item["json"]["body"] == {"note": "hi"}
    upload = item["binary"]["upload"]
    assert upload["file_name"] == "report.csv" and upload["mime_type"] == "text/csv"
    assert base64.b64decode(upload["data"]) == b"a,b\n1,2\n" and upload["size"] == 8
    response = await client.post(
        "/webhook/orders", content=b"\x89PNG", headers={"content-type": "image/png"}
    )
    data = await settle(client, response.json()["execution_id"])
    binary = data["nodes"]["Hook"]["runs"][0]["outputs"]["main"][0]["binary"]["body"]
    assert binary["mime_type"] == "image/png" and base64.b64decode(binary["data"]) == b"\x89PNG"


async def test_a_body_claiming_a_file_upload_reads_no_file(client: Client, tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    await create(client, webhook_flow(respond="last_node"))
    # n8n's form webhook once trusted a JSON body's `files` as uploaded files on disk
    claim = {"files": {"upload": {"filepath": str(secret), "originalFilename": "x.txt"}}}
    response = await client.post("/webhook/orders", json=claim)
    assert response.status_code == 200 and "TOP SECRET" not in response.text
    # a multipart content type with a JSON body is not multipart: refused, nothing read
    response = await client.post(
        "/webhook/orders",
        content=b'{"files": {"upload": {"filepath": "%s"}}}' % str(secret).encode(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 400 and "TOP SECRET" not in response.text
    assert "binary" not in response.text


async def test_body_size_limit(client: Client) -> None:
    await create(client, webhook_flow(respond="last_node", max_body_bytes=100))
    assert (await client.post("/webhook/orders", content=b"x" * 100)).status_code == 200
    response = await client.post("/webhook/orders", content=b"x" * 101)
    assert response.status_code == 413 and "100 bytes" in response.json()["detail"]
    # a chunked body without Content-Length is counted while read: see test_serve_triggers


# -- rate limit and CORS --------------------------------------------------------------------
async def test_rate_limit_answers_429(client: Client) -> None:
    await create(client, webhook_flow(respond="last_node", rate_limit=3))
    statuses = [(await client.post("/webhook/orders")).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = await client.post("/webhook/orders")
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    assert len(await executions(client)) == 3


async def test_cors_preflight_and_headers(client: Client) -> None:
    await create(
        client,
        webhook_flow(respond="last_node", cors_origins=["https://app.example"]),
    )
    preflight = await client.options(
        "/webhook/orders",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    denied = await client.options(
        "/webhook/orders",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert denied.status_code == 403
    response = await client.post("/webhook/orders", headers={"origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    response = await client.post("/webhook/orders", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


# -- test URLs ------------------------------------------------------------------------------
async def test_test_url_runs_the_draft_once(client: Client) -> None:
    workflow_id = await create(client, webhook_flow(path="t", respond="last_node"), active=False)
    assert (await client.post("/webhook-test/t")).status_code == 404
    draft = webhook_flow(path="t", respond="last_node", extra=[SET_TAG])
    draft["pinned"] = {"Hook": [{"json": {"pinned": True}}]}
    listening = await client.post(f"/api/v1/workflows/{workflow_id}/test-webhook", json=draft)
    assert listening.status_code == 201, listening.text
    assert listening.json()["webhooks"][0]["url"].endswith("/webhook-test/t")
    response = await client.post("/webhook-test/t", json={"n": 1})
    assert response.status_code == 200
    assert response.json()["tag"] == "done" and response.json()["body"] == {"n": 1}
    assert (await client.post("/webhook-test/t", json={"n": 2})).status_code == 404  # once
    (summary,) = await executions(client)
    assert summary["mode"] == "manual"
    assert (await client.post("/webhook/t")).status_code == 404  # not active


async def test_test_url_listening_expires_and_can_be_stopped(serve: Any) -> None:
    async with serve(webhook_test_seconds=0.2) as client:
        workflow_id = await create(client, webhook_flow(path="t"), active=False)
        await client.post(f"/api/v1/workflows/{workflow_id}/test-webhook")
        await asyncio.sleep(0.3)
        assert (await client.post("/webhook-test/t")).status_code == 404
        await client.post(f"/api/v1/workflows/{workflow_id}/test-webhook")
        assert (
            await client.delete(f"/api/v1/workflows/{workflow_id}/test-webhook")
        ).status_code == 204
        assert (await client.post("/webhook-test/t")).status_code == 404


async def test_test_url_refuses_a_workflow_without_webhook(client: Client) -> None:
    document = {"name": "plain", "nodes": [{"name": "Start", "type": "manual_trigger"}]}
    workflow_id = await create(client, document, active=False)
    response = await client.post(f"/api/v1/workflows/{workflow_id}/test-webhook")
    assert response.status_code == 422 and "no enabled webhook node" in response.text


async def test_workflows_changed_by_another_process_are_registered(client: Client) -> None:
    from flowlite import store

    state = server(client)

    async def import_active(document: dict[str, Any]) -> str:
        detail = await store.create_workflow(
            state.db, document, state.registry, active=True
        )  # as `flowlite import` does, next to the running server
        return detail.id

    imported = await in_app(client, import_active, webhook_flow("imported", path="imp"))
    assert (await client.post("/webhook/imp")).status_code == 404  # not seen yet
    assert await in_app(client, state.triggers.reconcile) == [imported]
    assert (await client.post("/webhook/imp")).status_code == 200
    # a second one on the same path cannot be registered: listed with the reason
    clash = await in_app(client, import_active, webhook_flow("clash", path="imp"))
    assert await in_app(client, state.triggers.reconcile) == [clash]
    triggers = (await client.get(f"/api/v1/workflows/{clash}/triggers")).json()
    assert triggers["active"] is False and "conflicts with" in triggers["problem"]
    assert await in_app(client, state.triggers.reconcile) == []  # tried once per version
