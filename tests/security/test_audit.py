"""The audit log: entries for workflow and credential changes, and a chain that catches tampering."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from flowlite.audit import record, verify
from flowlite.cli import main
from flowlite.config import Config
from flowlite.db import open_database
from flowlite.migrations import migrate

Client = AsyncTestClient[Any]

WORKFLOW = {
    "name": "audited",
    "nodes": [{"name": "Start", "type": "manual_trigger"}],
    "connections": [],
}


async def test_changes_are_audited_and_listed(client: Client) -> None:
    created = (await client.post("/api/v1/workflows", json=WORKFLOW)).json()
    workflow_id = created["id"]
    assert (await client.put(f"/api/v1/workflows/{workflow_id}", json=WORKFLOW)).status_code == 200
    assert (await client.delete(f"/api/v1/workflows/{workflow_id}")).status_code == 204
    body = {"name": "tok", "type": "bearer_token", "data": {"token": "very-secret-token"}}
    credential = (await client.post("/api/v1/credentials", json=body)).json()
    state = client.app.state.flowlite
    await state.credentials("tok", workflow_id="W1")
    await client.delete(f"/api/v1/credentials/{credential['id']}")
    page = (await client.get("/api/v1/audit", params={"limit": 4})).json()
    assert [e["action"] for e in page["data"]] == [
        "credential.delete",
        "credential.use",
        "credential.create",
        "workflow.delete",
    ]
    assert page["data"][1]["actor"] == "workflow:W1"
    assert page["data"][2]["actor"] == "api" and page["data"][2]["object_id"] == credential["id"]
    older = (await client.get("/api/v1/audit", params={"before": page["next_before"]})).json()
    assert [e["action"] for e in older["data"]] == ["workflow.save", "workflow.create"]
    assert older["next_before"] is None
    assert older["data"][0]["details"] == {"version": 2}
    everything = await client.get("/api/v1/audit", params={"limit": 500})
    assert "very-secret-token" not in everything.text
    only = (await client.get("/api/v1/audit", params={"action": "credential.use"})).json()
    assert len(only["data"]) == 1
    assert (await client.get("/api/v1/audit/verify")).json()["ok"] is True


async def _filled(tmp_path: Path, count: int = 6) -> Path:
    config = Config(data_dir=tmp_path)
    db = open_database(config.url)
    await migrate(db)
    for i in range(count):
        await record(db, "workflow.save", "workflow", f"w{i}", details={"version": i})
    assert (await verify(db)).entries == count
    await db.close()
    return tmp_path / "flowlite.db"


def _verify_cli(tmp_path: Path) -> Any:
    return CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(tmp_path)])


def test_intact_chain_verifies(tmp_path: Path) -> None:
    asyncio.run(_filled(tmp_path))
    result = _verify_cli(tmp_path)
    assert result.exit_code == 0 and "intact: 6 entries" in result.output


def test_an_edited_entry_is_detected(tmp_path: Path) -> None:
    path = asyncio.run(_filled(tmp_path))
    with sqlite3.connect(path) as connection:
        connection.execute("""UPDATE audit_log SET details = '{"version": 99}' WHERE seq = 3""")
    result = _verify_cli(tmp_path)
    assert result.exit_code == 1
    assert "broken at entry 3" in result.output


def test_a_deleted_middle_entry_is_detected(tmp_path: Path) -> None:
    path = asyncio.run(_filled(tmp_path))
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM audit_log WHERE seq = 4")
    result = _verify_cli(tmp_path)
    assert result.exit_code == 1 and "broken at entry 5" in result.output
    assert "entry 4 is missing" in result.output


def test_renumbered_and_reordered_entries_are_detected(tmp_path: Path) -> None:
    path = asyncio.run(_filled(tmp_path))
    with sqlite3.connect(path) as connection:
        # delete entry 2 and close the gap: the chain no longer matches at 2
        connection.execute("DELETE FROM audit_log WHERE seq = 2")
        for seq in range(3, 7):
            connection.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq - 1, seq))
    assert "broken at entry 2" in _verify_cli(tmp_path).output
    path2 = asyncio.run(_filled(tmp_path / "b"))
    with sqlite3.connect(path2) as connection:  # swap the contents of entries 2 and 3
        rows = connection.execute(
            "SELECT seq, object_id, details, hash FROM audit_log WHERE seq IN (2, 3) ORDER BY seq"
        ).fetchall()
        for (seq, *_), (_, object_id, details, digest) in zip(rows, reversed(rows), strict=True):
            connection.execute(
                "UPDATE audit_log SET object_id = ?, details = ?, hash = ? WHERE seq = ?",
                (object_id, details, digest, seq),
            )
    assert "broken at entry 2" in _verify_cli(tmp_path / "b").output
