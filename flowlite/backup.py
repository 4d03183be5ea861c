"""Backups of the embedded SQLite database: `flowlite backup`, `flowlite restore`, and the copy
taken before a migration.

A backup goes through SQLite's online backup API (:meth:`sqlite3.Connection.backup`) in a single
step: it reads one consistent snapshot of the database while a running server keeps writing (in
WAL mode a reader never blocks the writer), writes it to a temporary file next to the target,
converts it to a self-contained single file (journal mode ``DELETE``), checks it and only then
renames it into place, so an interrupted backup never leaves a half-written file under the name.

A restore first checks the file: it is a SQLite database, ``PRAGMA integrity_check`` passes, its
schema revision is one this flowlite knows (an older one is migrated at the next start, a newer
one is refused), and the configured encryption key (``FLOWLITE_ENCRYPTION_KEY`` or the data
directory's ``encryption.key``) is the key its credentials are encrypted with (compared by
fingerprint). It then takes an exclusive lock on the live database, which fails while a server or
another command has it open, copies the current database to ``backups/`` and writes the backup
over it, again through the backup API. A backup never contains the key: keep the key apart.

Postgres has its own tools: both commands refuse with a message pointing to ``pg_dump`` and
``pg_restore``. Spilled node outputs (``<data dir>/executions/``) are files, not rows: copy that
directory along with the backup to keep them.

Errors::

    UserError
    └── BackupError       the backup or restore cannot be done; the message says why and what to do
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from flowlite.errors import UserError

if TYPE_CHECKING:
    from flowlite.config import Config
    from flowlite.db import Database

__all__ = [
    "BackupError",
    "DatabaseInfo",
    "backup_before_migration",
    "backup_database",
    "check_key",
    "inspect_database",
    "restore_database",
    "sqlite_path",
]

log = logging.getLogger("flowlite.backup")

#: tables whose row counts a backup and a restore report
COUNTED = ("workflows", "workflow_versions", "executions", "execution_data")
_HEADER = b"SQLite format 3\x00"
#: how long a backup waits for a lock (a checkpoint or a migration) before giving up
_BUSY_SECONDS = 30.0


class BackupError(UserError):
    """A backup or restore cannot be done; the message says why and what to do instead."""


@dataclass(frozen=True)
class DatabaseInfo:
    """What a database file holds: its schema revision, row counts and size, and the fingerprint
    of the key its credentials are encrypted with (``None`` before the first start that set one)."""

    path: Path
    revision: str | None
    counts: dict[str, int] = field(default_factory=dict)
    size: int = 0
    seconds: float = 0.0
    key_fingerprint: str | None = None


def sqlite_path(url: str) -> Path:
    """The file of a SQLite database URL; :class:`BackupError` for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            "flowlite backup and restore work on the embedded SQLite database; this server uses "
            f"{parsed.get_backend_name()}: back it up with `pg_dump --format=custom` and restore "
            "it with `pg_restore` (stop the server first)"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("the database URL names no SQLite file")
    return Path(parsed.database)


@contextlib.contextmanager
def _connect(path: Path, *, timeout: float = _BUSY_SECONDS) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def _revision(connection: sqlite3.Connection) -> str | None:
    has_table = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if not has_table:
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _counts(connection: sqlite3.Connection) -> dict[str, int]:
    tables = {
        str(row[0])
        for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    counts: dict[str, int] = {}
    for table in COUNTED:
        if table in tables:
            sql = f'SELECT count(*) FROM "{table}"'  # noqa: S608 - names from COUNTED only
            counts[table] = int(connection.execute(sql).fetchone()[0])
    return counts


def _fingerprint(connection: sqlite3.Connection) -> str | None:
    from flowlite.crypto import FINGERPRINT

    has_table = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_table:
        return None
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (FINGERPRINT,)).fetchone()
    return str(row[0]) if row else None


def _integrity(connection: sqlite3.Connection, what: str) -> None:
    rows = [str(row[0]) for row in connection.execute("PRAGMA integrity_check(20)")]
    if rows != ["ok"]:
        shown = "; ".join(rows[:5])
        raise BackupError(f"{what} failed its integrity check: {shown}")


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(_HEADER)) == _HEADER
    except OSError:
        return False


def _check_revision(revision: str | None, what: str) -> None:
    from flowlite.migrations import HEAD, REVISIONS

    if revision is None:
        raise BackupError(f"{what} holds no flowlite schema (no alembic_version table)")
    if revision not in REVISIONS:
        raise BackupError(
            f"{what} has schema revision {revision!r}, newer than this flowlite knows (up to "
            f"{HEAD!r}): it was written by a newer flowlite; restore it with that version"
        )


def inspect_database(path: Path) -> DatabaseInfo:
    """Check that ``path`` is a sound flowlite database this code can open, and describe it."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    if not _is_sqlite(path):
        raise BackupError(f"{path} is not a SQLite database")
    try:
        with _connect(path, timeout=1.0) as connection:
            _integrity(connection, str(path))
            revision = _revision(connection)
            counts = _counts(connection)
            fingerprint = _fingerprint(connection)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read as a SQLite database: {exc}") from None
    _check_revision(revision, str(path))
    return DatabaseInfo(path, revision, counts, path.stat().st_size, key_fingerprint=fingerprint)


def check_key(info: DatabaseInfo, config: Config) -> None:
    """Refuse a database whose credentials are encrypted with another key than the configured one."""
    from flowlite.crypto import EncryptionKeyError, load_cipher

    if info.key_fingerprint is None:
        return
    try:
        cipher = load_cipher(config, create=False)
    except EncryptionKeyError as exc:
        raise BackupError(
            f"{info.path}: its credentials are encrypted with the key of fingerprint "
            f"{info.key_fingerprint}, and {exc.message}"
        ) from None
    if cipher.fingerprint != info.key_fingerprint:
        raise BackupError(
            f"{info.path}: its credentials are encrypted with the key of fingerprint "
            f"{info.key_fingerprint}, but the key from {cipher.source} has fingerprint "
            f"{cipher.fingerprint}: put the backed-up server's key in place (the encryption.key "
            "file of its data directory, or FLOWLITE_ENCRYPTION_KEY) and restore again"
        )


def _copy(source: sqlite3.Connection, target: Path) -> DatabaseInfo:
    """Copy ``source`` into a new file ``target`` (single file, checked, fsynced)."""
    with _connect(target) as copy:
        # one step: the whole snapshot is read in one transaction, so it is consistent
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        _integrity(copy, "the copy")
        revision = _revision(copy)
        counts = _counts(copy)
        fingerprint = _fingerprint(copy)
    with target.open("rb") as file:
        os.fsync(file.fileno())
    return DatabaseInfo(
        target, revision, counts, target.stat().st_size, key_fingerprint=fingerprint
    )


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def backup_database(database: Path, target: Path, *, overwrite: bool = False) -> DatabaseInfo:
    """Write a consistent copy of the SQLite file ``database`` to ``target``.

    Safe while a server writes to the database. ``target`` is replaced only when ``overwrite``
    is true, and only once the new copy is complete and checked.
    """
    started = time.monotonic()
    if not database.is_file():
        raise BackupError(f"there is no database at {database} (wrong --data-dir?)")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists (use --force to replace it)")
    if target.exists() and target.is_dir():
        raise BackupError(f"{target} is a directory; give a file name")
    if target.resolve() == database.resolve():
        raise BackupError("the backup file cannot be the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        with _connect(database) as source:
            info = _copy(source, partial)
        os.replace(partial, target)
        _fsync_directory(target.parent)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"backup of {database} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return dataclasses.replace(info, path=target, seconds=time.monotonic() - started)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


@contextlib.contextmanager
def _exclusive(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection holding an exclusive lock on ``database`` until the block ends."""
    with _connect(database, timeout=0.5) as connection:
        try:
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            # in exclusive locking mode the lock stays after COMMIT, until the connection closes
            connection.execute("BEGIN EXCLUSIVE")
            connection.execute("COMMIT")
        except sqlite3.OperationalError:
            raise BackupError(
                f"{database} is in use (is `flowlite serve` running on this data directory?): "
                "stop the server, then restore"
            ) from None
        yield connection


def restore_database(source: Path, config: Config, *, force: bool = False) -> DatabaseInfo:
    """Replace the SQLite database of ``config`` with the backup ``source``, after checking it.

    Refuses while the database is in use, and, unless ``force``, when the database already holds
    workflows or executions. The database it replaces is first copied to
    ``<its directory>/backups/pre-restore-<time>.db``.
    """
    started = time.monotonic()
    database = sqlite_path(config.url)
    info = inspect_database(source)
    check_key(info, config)
    if database.exists() and source.resolve() == database.resolve():
        raise BackupError("the backup file is the database itself")
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _exclusive(database) as live:
            current = _counts(live)
            if any(current.values()) and not force:
                shown = ", ".join(f"{n} {t}" for t, n in current.items() if n)
                raise BackupError(
                    f"{database} already holds data ({shown}); use --force to replace it "
                    "(a copy of it is kept in the backups directory)"
                )
            if current:
                keep = database.parent / "backups" / f"pre-restore-{_stamp()}.db"
                keep.parent.mkdir(parents=True, exist_ok=True)
                _copy(live, keep)
                log.info("the database being replaced was copied to %s", keep)
            with _connect(source, timeout=1.0) as backup:
                backup.backup(live)
            _integrity(live, "the restored database")
            restored = DatabaseInfo(database, _revision(live), _counts(live))
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"restore into {database} failed: {exc}") from None
    if restored.counts != info.counts or restored.revision != info.revision:
        raise BackupError(
            f"the restored database does not match the backup ({restored.counts} rows at "
            f"revision {restored.revision}, expected {info.counts} at {info.revision})"
        )
    return dataclasses.replace(info, path=database, seconds=time.monotonic() - started)


async def backup_before_migration(db: Database, revision: str) -> Path | None:
    """Copy a SQLite database about to be migrated from ``revision`` to
    ``<its directory>/backups/flowlite-<revision>-<time>.db``; ``None`` for Postgres."""
    import asyncio

    if not db.is_sqlite:
        return None
    database = sqlite_path(str(db.engine.url))
    target = database.parent / "backups" / f"flowlite-{revision}-{_stamp()}.db"
    info = await asyncio.to_thread(backup_database, database, target)
    log.info("database at schema revision %s copied to %s before migrating", revision, target)
    return info.path
