"""Schema migrations: from an empty database, from the previous revision, atomically, and the
refusal of a schema newer than the code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from flowlite.app import start_server
from flowlite.config import Config
from flowlite.db import Database, open_database
from flowlite.migrations import HEAD, REVISIONS, SCRIPTS, SchemaTooNew, current_revision, migrate
from tests.server.conftest import new_pg_database


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    else:
        url = await new_pg_database(request)
    database = open_database(url)
    yield database
    await database.close()


async def _tables(db: Database) -> set[str]:
    async with db.read() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names)


async def _revision(db: Database) -> str | None:
    async with db.read() as connection:
        return await current_revision(connection)


def test_revisions_match_the_scripts() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(SCRIPTS))
    scripts = ScriptDirectory.from_config(config)
    chain = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(chain) == REVISIONS
    assert scripts.get_current_head() == HEAD


async def test_upgrade_from_empty(empty_db: Database) -> None:
    assert await _revision(empty_db) is None
    assert await migrate(empty_db) == (None, HEAD)
    assert {"workflows", "workflow_versions", "executions", "execution_data"} <= await _tables(
        empty_db
    )
    assert await _revision(empty_db) == HEAD
    assert await migrate(empty_db) == (HEAD, HEAD)  # idempotent


async def test_upgrade_from_previous_revision_keeps_data(empty_db: Database) -> None:
    previous = REVISIONS[-2]
    await migrate(empty_db, previous)
    assert await _revision(empty_db) == previous
    async with empty_db.write() as connection:
        await connection.execute(
            text(
                "INSERT INTO workflows (id, name, active, version, created_at, updated_at) "
                "VALUES ('w1', 'kept', true, 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
            )
        )
    assert await migrate(empty_db) == (previous, HEAD)
    async with empty_db.read() as connection:
        rows = (await connection.execute(text("SELECT id, name FROM workflows"))).all()
    assert [tuple(r) for r in rows] == [("w1", "kept")]
    assert "executions" in await _tables(empty_db)


async def test_a_failing_migration_changes_nothing(empty_db: Database) -> None:
    # a table in the way of revision 0001, which creates `workflows` first: the failure must
    # take `workflows` (and every later revision) back with it
    async with empty_db.write() as connection:
        await connection.execute(text("CREATE TABLE workflow_versions (x INTEGER)"))
    with pytest.raises(Exception, match=r"(?i)exists"):
        await migrate(empty_db)
    assert await _revision(empty_db) is None
    assert await _tables(empty_db) == {"workflow_versions"}


async def test_newer_schema_refuses_to_start(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path)
    db = open_database(config.url)
    await migrate(db)
    async with db.write() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew) as caught:
        await migrate(db)
    await db.close()
    assert "newer than this flowlite knows" in caught.value.message
    assert "upgrade flowlite" in caught.value.message
    with pytest.raises(SchemaTooNew):
        await start_server(config)
