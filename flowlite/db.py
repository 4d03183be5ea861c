"""The database connection: SQLAlchemy 2 async over SQLite (default) or Postgres.

SQLite is opened in WAL mode with a busy timeout, ``synchronous=NORMAL`` and incremental
auto-vacuum. Readers run concurrently; every write goes through :meth:`Database.write`, which
serialises the writers of this process behind one lock and opens the transaction with
``BEGIN IMMEDIATE``, so a write never fails half-way with "database is locked" (another process,
e.g. `flowlite import` next to a running server, waits up to the busy timeout instead).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from flowlite.errors import InternalError

__all__ = ["BUSY_TIMEOUT_MS", "Database", "open_database"]

BUSY_TIMEOUT_MS = 30_000


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # take transaction control away from the sqlite3 module: we emit BEGIN ourselves
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # auto_vacuum only takes effect on a database without tables: set it before the first one
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # reads run in autocommit mode (no BEGIN: one thread hop less per read); writes take the
    # write lock up front, so that they never fail half-way on a lock another process holds
    if connection.get_execution_options().get("flowlite_write", False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_WORKFLOW_TABLES = frozenset({"workflows", "workflow_versions"})


class Database:
    """An async engine plus the single write path."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        #: bumped whenever this process changes a workflow, so caches of workflows know
        self.workflow_generation = 0
        event.listen(engine.sync_engine, "after_execute", self._after_execute)
        event.listen(engine.sync_engine, "commit", self._after_commit)

    def _after_execute(self, connection: Any, statement: Any, *_: Any) -> None:
        table = getattr(statement, "table", None)
        if getattr(statement, "is_dml", False) and getattr(table, "name", None) in _WORKFLOW_TABLES:
            self.workflow_generation += 1
            connection.info["flowlite_workflows"] = True

    def _after_commit(self, connection: Any) -> None:
        # again at commit: a cache filled between the statement and the commit read the old row
        if connection.info.pop("flowlite_workflows", False):
            self.workflow_generation += 1

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading (on SQLite each statement sees the latest commit)."""
        async with self.engine.connect() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back on an exception."""
        if not self.is_sqlite:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._write_lock, self.engine.connect() as connection:
            connection = await connection.execution_options(flowlite_write=True)
            async with connection.begin():
                yield connection

    async def reclaim_space(self, step_pages: int = 2048, pause: float = 0.01) -> int:
        """Give free pages back to the file system (SQLite incremental vacuum), a few thousand
        pages per write lock so that writers are never held up for long; returns pages freed."""
        if not self.is_sqlite:
            return 0
        freed = 0
        while True:
            async with self._write_lock, self.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                before = await _scalar(driver, "PRAGMA freelist_count")
                if before == 0:
                    break
                # executescript steps the pragma to its end; execute() would free one page only
                await driver.executescript(f"PRAGMA incremental_vacuum({int(step_pages)});")
                after = await _scalar(driver, "PRAGMA freelist_count")
            freed += before - after
            if after == 0 or after >= before:
                break
            await asyncio.sleep(pause)
        async with self._write_lock, self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            await driver.executescript("PRAGMA wal_checkpoint(TRUNCATE);")
        return freed

    async def close(self) -> None:
        await self.engine.dispose()


async def _scalar(driver: Any, sql: str) -> int:
    async with driver.execute(sql) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def open_database(url: str, *, echo: bool = False) -> Database:
    """Create the engine for ``url`` (the SQLite file's directory is created when missing)."""
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise InternalError("flowlite needs a SQLite file, not an in-memory database")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    else:
        options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        engine = create_async_engine(url, **options)
    return Database(engine)
