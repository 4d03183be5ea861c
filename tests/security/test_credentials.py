"""Stored credentials over the real app: the API never returns a secret, runs use them without
leaving them in records, logs or error messages, and the key can be rotated under load."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from flowlite.cli import main
from flowlite.config import Config
from flowlite.credentials import (
    StoredCredentials,
    create_credential,
    get_credential,
    rotate_key,
)
from flowlite.crypto import Cipher, check_key, generate_key, parse_key
from flowlite.db import open_database
from flowlite.migrations import migrate
from tests.httpserver import Request, Response, TestServer

Client = AsyncTestClient[Any]

PASSWORD = "s3cr3t-pässwörd-XYZ"
TOKEN = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()


def _secret_free(text: str) -> None:
    for secret in (PASSWORD, TOKEN, json.dumps(PASSWORD)[1:-1]):
        assert secret not in text


async def _create(client: Client, name: str = "api login") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/credentials",
        json={"name": name, "type": "basic_auth", "data": {"user": "ann", "password": PASSWORD}},
    )
    assert response.status_code == 201, response.text
    _secret_free(response.text)
    body: dict[str, Any] = response.json()
    return body


async def test_crud_never_returns_secrets(client: Client, config: Config) -> None:
    created = await _create(client)
    assert created["fields"] == {"user": "ann"} and created["secrets"] == ["password"]
    assert created["type"] == "basic_auth"
    listed = await client.get("/api/v1/credentials")
    _secret_free(listed.text)
    assert [c["name"] for c in listed.json()] == ["api login"]
    for reference in (created["id"], "api login"):
        one = await client.get(f"/api/v1/credentials/{reference}")
        assert one.status_code == 200 and one.json()["id"] == created["id"]
        _secret_free(one.text)
    # data fields left out keep their value
    renamed = await client.put(
        f"/api/v1/credentials/{created['id']}", json={"name": "login", "data": {"user": "bob"}}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["fields"] == {"user": "bob"} and renamed.json()["name"] == "login"
    _secret_free(renamed.text)
    state = client.app.state.flowlite
    assert await state.credentials("login", workflow_id=None) == {
        "user": "bob",
        "password": PASSWORD,
    }
    # stored encrypted: the database file holds no plaintext
    raw = sqlite3.connect(config.data_dir / "flowlite.db").execute("SELECT data FROM credentials")
    blob = raw.fetchone()[0]
    assert PASSWORD.encode() not in blob and b"bob" not in blob
    types = (await client.get("/api/v1/credentials/types")).json()
    assert {t["type"] for t in types} >= {"oauth2", "smtp", "database", "generic", "api_key"}
    assert (await client.delete("/api/v1/credentials/login")).status_code == 204
    missing = await client.get("/api/v1/credentials/login")
    assert missing.status_code == 404 and "no credential named 'login'" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "x", "type": "nope", "data": {}}, "unknown credential type 'nope'"),
        ({"name": "x", "type": "basic_auth", "data": {"user": "a"}}, "field 'password'"),
        (
            {
                "name": "x",
                "type": "basic_auth",
                "data": {"user": "a", "password": PASSWORD, "pin": 1},
            },
            "no field(s) pin",
        ),
        (
            {
                "name": "x",
                "type": "smtp",
                "data": {"host": "h", "port": PASSWORD, "security": "tls"},
            },
            "field 'port' must be an integer",
        ),
        ({"name": " ", "type": "bearer_token", "data": {"token": PASSWORD}}, "name of 1 to 255"),
    ],
)
async def test_bad_credentials_are_refused_without_echoing_values(
    client: Client, body: dict[str, Any], expected: str
) -> None:
    response = await client.post("/api/v1/credentials", json=body)
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]
    _secret_free(response.text)


async def test_duplicate_names_conflict(client: Client) -> None:
    await _create(client)
    response = await client.post(
        "/api/v1/credentials",
        json={"name": "api login", "type": "bearer_token", "data": {"token": "t"}},
    )
    assert response.status_code == 409


def _guarded(request: Request) -> Response:
    if request.headers.get("authorization") != f"Basic {TOKEN}":
        return Response.json({"error": "unauthorized"}, status=401)
    return Response.json({"ok": True})


def _workflow(url: str, credential: str) -> dict[str, Any]:
    return {
        "name": "uses a credential",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {
                "name": "Call",
                "type": "http_request",
                "parameters": {"url": url, "auth": "basic"},
                "credentials": {"auth": credential},
            },
        ],
        "connections": [{"from": "Start", "to": "Call"}],
    }


async def _run(client: Client, document: dict[str, Any]) -> dict[str, Any]:
    created = await client.post("/api/v1/workflows", json=document)
    assert created.status_code == 201, created.text
    response = await client.post(
        f"/api/v1/workflows/{created.json()['id']}/run", params={"wait": "true"}
    )
    assert response.status_code in (200, 202), response.text
    _secret_free(response.text)
    execution_id = response.json()["id"]
    detail = await client.get(f"/api/v1/executions/{execution_id}")
    _secret_free(detail.text)
    record: dict[str, Any] = detail.json()
    return record


async def test_a_run_uses_the_credential_and_leaves_no_secret_behind(
    client: Client, config: Config, http_server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http_server.route("/guarded", _guarded)
    await _create(client)
    ok = await _run(client, _workflow(http_server.url("/guarded"), "api login"))
    assert ok["status"] == "success", ok
    assert http_server.requests[-1].headers["authorization"] == f"Basic {TOKEN}"
    # the same credential against a server that refuses it: the error names no secret
    http_server.route("/refuse", lambda request: Response.json({"error": "no"}, status=401))
    failed = await _run(client, _workflow(http_server.url("/refuse"), "api login"))
    assert failed["status"] == "error"
    database = sqlite3.connect(config.data_dir / "flowlite.db")
    for _ in range(100):  # the records are committed by the writer in the background
        query = "SELECT count(*) FROM execution_data WHERE record IS NOT NULL"
        if database.execute(query).fetchone()[0] == 2:
            break
        await asyncio.sleep(0.05)
    for (record,) in database.execute("SELECT record FROM execution_data"):
        if record is not None:
            _secret_free(zlib.decompress(record).decode())
    for path in config.data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".key" and "flowlite.db" not in path.name:
            _secret_free(path.read_text(errors="replace"))
    _secret_free(caplog.text)
    listed = await client.get("/api/v1/executions")
    _secret_free(listed.text)


def test_cli_list_and_rotate_key(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data")

    async def setup() -> None:
        db = open_database(config.url)
        await migrate(db)
        cipher = await check_key(db, config)
        await create_credential(
            db,
            cipher,
            "mail",
            "smtp",
            {"host": "h", "port": 25, "password": PASSWORD, "security": "starttls"},
        )
        await db.close()

    asyncio.run(setup())
    runner = CliRunner()
    args = ["--data-dir", str(config.data_dir)]
    listed = runner.invoke(main, ["credentials", "list", *args])
    assert listed.exit_code == 0, listed.output
    assert "mail" in listed.output and "smtp" in listed.output and PASSWORD not in listed.output
    as_json = json.loads(runner.invoke(main, ["credentials", "list", "--json", *args]).output)
    assert as_json[0]["fields"] == {"host": "h", "port": 25, "security": "starttls"}
    key_file = config.data_dir / "encryption.key"
    before = key_file.read_text()
    rotated = runner.invoke(main, ["credentials", "rotate-key", *args])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1 credential(s)" in rotated.output
    assert key_file.read_text() != before and (key_file.stat().st_mode & 0o777) == 0o600
    assert not (config.data_dir / "encryption.key.new").exists()
    again = runner.invoke(main, ["credentials", "list", "--json", *args])
    assert json.loads(again.output)[0]["secrets"] == ["password"]
    key = runner.invoke(main, ["credentials", "generate-key"]).output.strip()
    assert len(parse_key(key, "x")) == 32


def test_cli_rotate_with_the_key_setting_prints_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = generate_key()
    monkeypatch.setenv("FLOWLITE_ENCRYPTION_KEY", old)
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    assert runner.invoke(main, ["credentials", "list", *args]).exit_code == 0
    rotated = runner.invoke(main, ["credentials", "rotate-key", *args])
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert len(parse_key(new, "x")) == 32 and new != old
    refused = runner.invoke(main, ["credentials", "list", *args])
    assert refused.exit_code == 2 and "start with the original key" in refused.output
    monkeypatch.setenv("FLOWLITE_ENCRYPTION_KEY", new)
    assert runner.invoke(main, ["credentials", "list", *args]).exit_code == 0


async def test_rotate_key_under_load_keeps_every_credential_readable(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path)
    db = open_database(config.url)
    await migrate(db)
    old = await check_key(db, config)
    for i in range(20):
        await create_credential(db, old, f"c{i}", "bearer_token", {"token": f"t{i}"})
    source = StoredCredentials(db, old, config)
    stop = asyncio.Event()
    reads = 0

    async def reader(i: int) -> None:
        nonlocal reads
        while not stop.is_set():
            assert await source(f"c{i % 20}", workflow_id=None) == {"token": f"t{i % 20}"}
            reads += 1
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader(i)) for i in range(8)]
    await asyncio.sleep(0.1)
    from flowlite.crypto import write_key_file

    current = old
    for _ in range(3):  # as the CLI does: new key file written right after the commit
        text = generate_key()
        new = Cipher(parse_key(text, "new"), "new")
        assert await rotate_key(db, current, new) == 20
        current = new
        await asyncio.sleep(0.02)
        write_key_file(tmp_path / "encryption.key", text)
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*readers)
    assert reads > 20  # each read also appends a `credential.use` audit entry
    final = await check_key(db, config)
    for i in range(20):
        assert (await get_credential(db, final, f"c{i}")).secrets == ["token"]
    await db.close()
