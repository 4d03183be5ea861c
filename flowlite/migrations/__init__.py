"""Schema migrations (Alembic), run automatically and in one transaction when the server starts.

:data:`REVISIONS` lists the revisions this code knows, oldest first (a test checks it against the
scripts in ``versions/``). When the database is already at :data:`HEAD` nothing of Alembic is
imported, which keeps start-up fast; a database at a revision this code does not know (written by
a newer flowlite) is refused with a message saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from flowlite.db import Database
from flowlite.errors import FlowliteError

__all__ = ["HEAD", "REVISIONS", "SchemaTooNew", "check_revision", "current_revision", "migrate"]

REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")
HEAD = REVISIONS[-1]
SCRIPTS = Path(__file__).parent


class SchemaTooNew(FlowliteError):
    """The database was migrated by a newer flowlite than this one."""


async def current_revision(connection: AsyncConnection) -> str | None:
    """The schema revision recorded in the database (``None`` for an empty database)."""
    has_table = await connection.run_sync(
        lambda sync: sync.dialect.has_table(sync, "alembic_version")
    )
    if not has_table:
        return None
    try:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None
    row = result.first()
    return str(row[0]) if row else None


def _alembic_config(sync_connection: Any) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = sync_connection
    return config


def _upgrade(sync_connection: Any, target: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(sync_connection), target)


def _check_known(revision: str | None) -> None:
    if revision is not None and revision not in REVISIONS:
        raise SchemaTooNew(
            f"the database schema is at revision {revision!r}, newer than this flowlite knows "
            f"(up to {HEAD!r}): it was used by a newer flowlite; upgrade flowlite to open it"
        )


async def check_revision(db: Database) -> str | None:
    """The database's revision; :class:`SchemaTooNew` when this code does not know it."""
    async with db.read() as connection:
        revision = await current_revision(connection)
    _check_known(revision)
    return revision


async def migrate(db: Database, target: str = HEAD) -> tuple[str | None, str]:
    """Bring the schema to ``target`` in one transaction; returns (revision before, after)."""
    async with db.read() as connection:
        before = await current_revision(connection)
    _check_known(before)
    if before == target:
        return before, target
    if before is not None:
        from flowlite.backup import backup_before_migration

        await backup_before_migration(db, before)  # a copy to go back to, taken first
    async with db.write() as connection:
        before = await current_revision(connection)  # another process may have migrated
        _check_known(before)
        if before != target:
            await connection.run_sync(_upgrade, target)
    return before, target
