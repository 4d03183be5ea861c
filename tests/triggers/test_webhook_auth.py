"""Webhook authentication over real HTTP: header token, basic auth and HMAC signatures with a
timestamp window and replay protection (also across a restart). Secrets come from
credentials (FLOWLITE_CREDENTIAL_<NAME>), never from the workflow document."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from flowlite.webhooks import sign
from tests.triggers.conftest import Client, Serve, create, executions, webhook_flow

SECRET = "s3cr3t-hmac-key"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWLITE_CREDENTIAL_TOKEN", json.dumps({"value": "Bearer abc123"}))
    monkeypatch.setenv(
        "FLOWLITE_CREDENTIAL_BASIC_LOGIN", json.dumps({"user": "ann", "password": "pässword"})
    )
    monkeypatch.setenv("FLOWLITE_CREDENTIAL_SIGNING", json.dumps({"secret": SECRET}))
    monkeypatch.setenv(
        "FLOWLITE_CREDENTIAL_NAMED", json.dumps({"name": "X-Token", "value": "t0k3n"})
    )
    monkeypatch.setenv("FLOWLITE_CREDENTIAL_BROKEN", json.dumps({"wrong_key": "x"}))


def guarded(auth: str, credential: str, **parameters: Any) -> dict[str, Any]:
    return webhook_flow(
        f"{auth} guarded",
        path=auth,
        respond="last_node",
        auth=auth,
        hook={"credentials": {"auth": credential}},
        **parameters,
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_header_token(client: Client) -> None:
    await create(client, guarded("header", "token"))
    ok = await client.post("/webhook/header", headers={"Authorization": "Bearer abc123"})
    assert ok.status_code == 200
    wrong = await client.post("/webhook/header", headers={"Authorization": "Bearer nope"})
    missing = await client.post("/webhook/header")
    assert wrong.status_code == missing.status_code == 401
    assert "Authorization" in wrong.json()["detail"]
    assert len(await executions(client)) == 1  # refused requests start nothing


async def test_header_token_in_a_custom_header(client: Client) -> None:
    await create(client, guarded("header", "token", auth_header="X-Api-Key"))
    ok = await client.post("/webhook/header", headers={"X-Api-Key": "Bearer abc123"})
    assert ok.status_code == 200
    assert (
        await client.post("/webhook/header", headers={"Authorization": "Bearer abc123"})
    ).status_code == 401


async def test_header_named_by_the_credential(client: Client) -> None:
    await create(client, guarded("header", "named"))
    assert (await client.post("/webhook/header", headers={"X-Token": "t0k3n"})).status_code == 200
    refused = await client.post("/webhook/header", headers={"Authorization": "t0k3n"})
    assert refused.status_code == 401 and "X-Token" in refused.json()["detail"]


async def test_basic_auth(client: Client) -> None:
    await create(client, guarded("basic", "basic login"))
    ok = await client.post("/webhook/basic", headers={"Authorization": basic("ann", "pässword")})
    assert ok.status_code == 200
    wrong = await client.post("/webhook/basic", headers={"Authorization": basic("ann", "x")})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith('Basic realm="flowlite"')
    garbage = await client.post("/webhook/basic", headers={"Authorization": "Basic %%%"})
    assert garbage.status_code == 401
    assert (await client.post("/webhook/basic")).status_code == 401


def signed(body: bytes, *, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Flowlite-Timestamp": str(stamp),
        "X-Flowlite-Signature": "sha256=" + sign(secret, stamp, body),
        "Content-Type": "application/json",
    }


async def test_hmac_signature_window_and_replay(client: Client) -> None:
    await create(client, guarded("hmac", "signing", tolerance_seconds=60))
    body = b'{"order": 1}'
    headers = signed(body)
    ok = await client.post("/webhook/hmac", content=body, headers=headers)
    assert ok.status_code == 200 and ok.json()["body"] == {"order": 1}
    # the same request again: a replay
    replay = await client.post("/webhook/hmac", content=body, headers=headers)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
    # a wrong signature: another secret, or a changed body
    wrong = await client.post("/webhook/hmac", content=body, headers=signed(body, secret="x"))
    assert wrong.status_code == 401 and "wrong signature" in wrong.json()["detail"]
    tampered = await client.post("/webhook/hmac", content=b'{"order": 2}', headers=signed(body))
    assert tampered.status_code == 401
    # an old timestamp, correctly signed, is outside the window
    old = await client.post(
        "/webhook/hmac", content=body, headers=signed(body, timestamp=int(time.time()) - 120)
    )
    assert old.status_code == 401 and "60 seconds" in old.json()["detail"]
    future = await client.post(
        "/webhook/hmac", content=body, headers=signed(body, timestamp=int(time.time()) + 120)
    )
    assert future.status_code == 401
    missing = await client.post("/webhook/hmac", content=body)
    assert missing.status_code == 401 and "X-Flowlite-Signature" in missing.json()["detail"]
    # a bare hex signature (no sha256= prefix) is accepted too
    fresh = signed(b"{}")
    fresh["X-Flowlite-Signature"] = fresh["X-Flowlite-Signature"].removeprefix("sha256=")
    assert (await client.post("/webhook/hmac", content=b"{}", headers=fresh)).status_code == 200
    assert len(await executions(client)) == 2


async def test_a_replay_is_refused_after_a_restart(serve: Serve) -> None:
    body = b"{}"
    headers = signed(body)
    async with serve() as client:
        await create(client, guarded("hmac", "signing"))
        assert (
            await client.post("/webhook/hmac", content=body, headers=headers)
        ).status_code == 200
    async with serve() as client:
        replay = await client.post("/webhook/hmac", content=body, headers=headers)
        assert replay.status_code == 401 and "replay" in replay.json()["detail"]


async def test_activation_needs_a_credential_that_exists(client: Client) -> None:
    no_slot = webhook_flow("no slot", path="x", auth="header")
    workflow_id = await create(client, no_slot, active=False)
    response = await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
    assert response.status_code == 422 and "credentials: {auth:" in response.json()["detail"]
    unknown = guarded("header", "nobody")
    workflow_id = await create(client, unknown, active=False)
    response = await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
    assert response.status_code == 422
    assert "FLOWLITE_CREDENTIAL_NOBODY" in response.json()["detail"]


async def test_a_misconfigured_credential_answers_500_without_running(client: Client) -> None:
    await create(client, guarded("hmac", "broken"))
    body = b"{}"
    response = await client.post("/webhook/hmac", content=body, headers=signed(body))
    assert response.status_code == 500 and "misconfigured" in response.json()["detail"]
    assert await executions(client) == []


async def test_secrets_are_not_in_the_workflow_document(client: Client) -> None:
    workflow_id = await create(client, guarded("hmac", "signing"))
    document = (await client.get(f"/api/v1/workflows/{workflow_id}")).text
    assert SECRET not in document
