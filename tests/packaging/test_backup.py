"""`flowlite backup` and `flowlite restore`: a backup taken under write load restores with the same
counts; restore refuses a corrupt file, a newer schema, a database in use, and data it would
overwrite without --force; a migration copies the database first."""

from __future__ import annotations

import concurrent.futures
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from flowlite.app import create_app, start_server, stop_server
from flowlite.backup import (
    BackupError,
    backup_database,
    inspect_database,
    restore_database,
)
from flowlite.config import Config
from flowlite.crypto import KEY_FILE, generate_key, write_key_file
from flowlite.db import open_database
from flowlite.migrations import HEAD, migrate
from tests.packaging.conftest import VENV_FLOWLITE, Server
from tests.server.conftest import LINEAR


def config_for(data_dir: Path) -> Config:
    return Config(data_dir=data_dir, retention_interval=3600, sandbox_size=1, shutdown_timeout=5)


def counts(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("workflows", "workflow_versions", "executions", "execution_data")
        }
    finally:
        connection.close()


def set_revision(path: Path, revision: str) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    connection.close()


async def populated(data_dir: Path, workflows: int = 3, runs: int = 2) -> Path:
    """A data directory with a few workflows and executions; returns its database file."""
    async with AsyncTestClient(create_app(config_for(data_dir))) as client:
        for n in range(workflows):
            created = await client.post("/api/v1/workflows", json={**LINEAR, "name": f"w{n}"})
            for _ in range(runs):
                await client.post(
                    f"/api/v1/workflows/{created.json()['id']}/run", params={"wait": "true"}
                )
    return data_dir / "flowlite.db"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VENV_FLOWLITE, *args], capture_output=True, text=True, timeout=60, check=False
    )


# -- under load ------------------------------------------------------------------------------
def test_backup_during_write_load_restores_with_the_same_counts(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = Server([VENV_FLOWLITE], tmp_path / "data")
    servers.append(server)
    stop = threading.Event()

    def load(worker: int) -> int:
        made = 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                document = {**LINEAR, "name": f"load {worker}-{made}"}
                created = client.post("/api/v1/workflows", json=document)
                assert created.status_code == 201, created.text
                for _ in range(3):
                    started = client.post(f"/api/v1/workflows/{created.json()['id']}/run")
                    assert started.status_code == 202, started.text
                made += 1
        return made

    backups: list[Path] = []
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        writers = [pool.submit(load, n) for n in range(4)]
        time.sleep(0.5)
        for n in range(3):
            backups.append(tmp_path / f"{n}.db")
            done = cli("backup", str(backups[-1]), "--data-dir", str(server.data_dir))
            assert done.returncode == 0, done.stderr
            time.sleep(0.3)
        stop.set()
        made = sum(writer.result() for writer in writers)
    assert server.workflow_count() == made

    previous = 0
    for backup in backups:
        copied = counts(backup)
        # a consistent snapshot: a workflow and its first version are written together, so are
        # an execution's summary and its data
        assert copied["workflows"] == copied["workflow_versions"]
        assert copied["executions"] == copied["execution_data"]
        assert previous < copied["workflows"] < made  # taken while the writers were writing
        previous = copied["workflows"]
        assert inspect_database(backup).revision == HEAD
    assert server.stop()

    last = counts(backups[-1])
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    shutil.copy2(server.data_dir / KEY_FILE, restored_dir / KEY_FILE)  # kept apart from backups
    done = cli("restore", str(backups[-1]), "--data-dir", str(restored_dir))
    assert done.returncode == 0, done.stderr
    assert counts(restored_dir / "flowlite.db") == last
    restarted = Server([VENV_FLOWLITE], restored_dir)
    servers.append(restarted)
    assert restarted.workflow_count() == last["workflows"]
    ids = restarted.execution_ids()
    assert len(ids) == len(set(ids)) == last["executions"]
    assert restarted.stop()


# -- restore refuses -------------------------------------------------------------------------
async def test_restore_refuses_a_corrupt_file_and_leaves_the_database_alone(
    tmp_path: Path,
) -> None:
    database = await populated(tmp_path / "data")
    backup = backup_database(database, tmp_path / "good.db")
    target = await populated(tmp_path / "target", workflows=1, runs=0)
    before = counts(target)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(backup.path.read_bytes()[:5000])
    damaged = tmp_path / "damaged.db"
    raw = bytearray(backup.path.read_bytes())
    page = 4096
    for start in range(page, len(raw), 3 * page):  # every third page after the first
        raw[start + 8 : start + page] = b"\xa5" * (page - 8)
    damaged.write_bytes(bytes(raw))

    for bad, expected in (
        (garbage, "is not a SQLite database"),
        (truncated, "integrity"),
        (damaged, "integrity"),
        (tmp_path / "missing.db", "no such file"),
    ):
        with pytest.raises(BackupError) as caught:
            restore_database(bad, config_for(target.parent), force=True)
        message = caught.value.message
        assert expected in message or "cannot be read" in message, message
    assert counts(target) == before
    assert not (target.parent / "backups").exists()  # nothing was replaced


async def test_restore_refuses_a_newer_schema_and_a_foreign_database(tmp_path: Path) -> None:
    database = await populated(tmp_path / "data", workflows=1, runs=0)
    newer = backup_database(database, tmp_path / "newer.db").path
    set_revision(newer, "9999")
    with pytest.raises(BackupError, match="newer than this flowlite knows"):
        restore_database(newer, config_for(tmp_path / "target"))
    foreign = tmp_path / "foreign.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()
    with pytest.raises(BackupError, match="holds no flowlite schema"):
        restore_database(foreign, config_for(tmp_path / "target"))
    assert not (tmp_path / "target" / "flowlite.db").exists() or counts(
        tmp_path / "target" / "flowlite.db"
    ) == dict.fromkeys(("workflows", "workflow_versions", "executions", "execution_data"), 0)


async def test_an_older_schema_is_restored_and_migrated_at_the_next_start(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    db = open_database(f"sqlite+aiosqlite:///{old}")
    await migrate(db, "0001")
    await db.close()
    connection = sqlite3.connect(old)
    with connection:
        connection.execute(
            "INSERT INTO workflows (id, name, active, version, created_at, updated_at) "
            "VALUES ('01OLD', 'old', 0, 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
        )
    connection.close()
    data = tmp_path / "data"
    info = restore_database(old, config_for(data))
    assert info.revision == "0001" and info.counts["workflows"] == 1
    state = await start_server(config_for(data))
    await stop_server(state)
    assert inspect_database(data / "flowlite.db").revision == HEAD


async def test_restore_refuses_while_the_server_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = await populated(data, workflows=1, runs=1)
    backup = backup_database(database, tmp_path / "b.db")
    async with AsyncTestClient(create_app(config_for(data))) as client:
        assert (await client.get("/readyz")).status_code == 200
        with pytest.raises(BackupError, match=r"in use \(is `flowlite serve` running"):
            restore_database(backup.path, config_for(data), force=True)
        # a backup, on the other hand, works next to the running server
        assert backup_database(database, tmp_path / "live.db").counts == backup.counts


async def test_restore_over_data_needs_force_and_keeps_a_copy(tmp_path: Path) -> None:
    source = await populated(tmp_path / "source", workflows=2, runs=1)
    backup = backup_database(source, tmp_path / "b.db")
    target = await populated(tmp_path / "target", workflows=5, runs=0)
    shutil.copy2(source.parent / KEY_FILE, target.parent / KEY_FILE)
    with pytest.raises(BackupError, match=r"already holds data .*5 workflows.*use --force"):
        restore_database(backup.path, config_for(target.parent))
    assert counts(target)["workflows"] == 5
    restored = restore_database(backup.path, config_for(target.parent), force=True)
    assert restored.counts == backup.counts == counts(target)
    kept = list((target.parent / "backups").glob("pre-restore-*.db"))
    assert len(kept) == 1
    assert counts(kept[0])["workflows"] == 5


async def test_backup_refuses_to_overwrite_without_force_and_replaces_atomically(
    tmp_path: Path,
) -> None:
    database = await populated(tmp_path / "data", workflows=1, runs=0)
    target = tmp_path / "b.db"
    target.write_bytes(b"an older backup")
    with pytest.raises(BackupError, match="already exists"):
        backup_database(database, target)
    assert target.read_bytes() == b"an older backup"
    info = backup_database(database, target, overwrite=True)
    assert info.counts["workflows"] == 1
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    # a single file: no -wal to carry along
    mode = sqlite3.connect(target).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete"
    with pytest.raises(BackupError, match="no database at"):
        backup_database(tmp_path / "nowhere" / "flowlite.db", tmp_path / "c.db")


async def test_restore_needs_the_key_the_credentials_are_encrypted_with(tmp_path: Path) -> None:
    database = await populated(tmp_path / "data", workflows=1, runs=0)
    backup = backup_database(database, tmp_path / "b.db")
    assert backup.key_fingerprint is not None and len(backup.key_fingerprint) == 16
    target = tmp_path / "target"
    with pytest.raises(BackupError, match=rf"fingerprint {backup.key_fingerprint}, and .* missing"):
        restore_database(backup.path, config_for(target))
    write_key_file(target / KEY_FILE, generate_key())
    with pytest.raises(BackupError) as caught:
        restore_database(backup.path, config_for(target))
    assert backup.key_fingerprint in caught.value.message
    assert "but the key from" in caught.value.message
    # --force replaces data, never a key check
    with pytest.raises(BackupError, match="but the key from"):
        restore_database(backup.path, config_for(target), force=True)
    shutil.copy2(tmp_path / "data" / KEY_FILE, target / KEY_FILE)
    restored = restore_database(backup.path, config_for(target))
    assert restored.key_fingerprint == backup.key_fingerprint
    state = await start_server(config_for(target))  # the server accepts the key, too
    await stop_server(state)


# -- migrations ------------------------------------------------------------------------------
async def test_a_migration_copies_the_database_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = data / "flowlite.db"
    db = open_database(f"sqlite+aiosqlite:///{database}")
    await migrate(db, "0001")
    await db.close()
    connection = sqlite3.connect(database)
    with connection:
        connection.execute(
            "INSERT INTO workflows (id, name, active, version, created_at, updated_at) "
            "VALUES ('01OLD', 'old', 0, 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
        )
    connection.close()

    state = await start_server(config_for(data))
    await stop_server(state)
    copies = list((data / "backups").glob("flowlite-0001-*.db"))
    assert len(copies) == 1
    copy = inspect_database(copies[0])
    assert copy.revision == "0001" and copy.counts["workflows"] == 1
    assert inspect_database(database).revision == HEAD

    state = await start_server(config_for(data))  # at HEAD: nothing to migrate, no copy
    await stop_server(state)
    assert len(list((data / "backups").iterdir())) == 1


# -- the commands ----------------------------------------------------------------------------
async def test_backup_and_restore_commands(tmp_path: Path) -> None:
    database = await populated(tmp_path / "data", workflows=2, runs=2)
    file = tmp_path / "backups" / "flowlite.db"
    done = cli("backup", str(file), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert "2 workflows" in done.stdout and "4 executions" in done.stdout
    assert counts(file) == counts(database)

    again = cli("backup", str(file), "--data-dir", str(tmp_path / "data"))
    assert again.returncode == 2 and "already exists (use --force" in again.stderr
    assert cli("backup", str(file), "--force", "--data-dir", str(tmp_path / "data")).returncode == 0

    (tmp_path / "other").mkdir()
    shutil.copy2(tmp_path / "data" / KEY_FILE, tmp_path / "other" / KEY_FILE)
    restored = cli("restore", str(file), "--data-dir", str(tmp_path / "other"))
    assert restored.returncode == 0, restored.stderr
    assert counts(tmp_path / "other" / "flowlite.db") == counts(database)
    refused = cli("restore", str(file), "--data-dir", str(tmp_path / "other"))
    assert refused.returncode == 2 and "use --force" in refused.stderr
    forced = cli("restore", str(file), "--force", "--data-dir", str(tmp_path / "other"))
    assert forced.returncode == 0, forced.stderr

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage")
    bad = cli("restore", str(corrupt), "--data-dir", str(tmp_path / "other"))
    assert bad.returncode == 2 and "is not a SQLite database" in bad.stderr


def test_postgres_is_pointed_to_pg_dump(tmp_path: Path) -> None:
    url = "postgresql://flowlite:secret@127.0.0.1:1/flowlite"
    for command in ("backup", "restore"):
        done = cli(command, str(tmp_path / "x.db"), "--database-url", url)
        assert done.returncode == 2
        assert "pg_dump" in done.stderr and "pg_restore" in done.stderr
        assert "secret" not in done.stderr
