"""The audit log: who did what to which object, when, and whether it worked; hash-chained.

Entries are appended, never changed: each stores ``hash = SHA-256(previous hash + canonical JSON
of the entry)``, the entry including its sequence number, so :func:`verify` finds the first entry
that was edited, deleted or moved. (Deleting the *newest* entries leaves a shorter chain that
still verifies: keep a copy of the last hash elsewhere, e.g. in monitoring, to catch that.)

Entries are appended in the transaction of the change they record (:func:`append`), so a change
is never stored without its entry. Details never hold secret values: callers pass names and ids.

Actions: ``workflow.create``, ``workflow.save``, ``workflow.activate``, ``workflow.deactivate``,
``workflow.delete``, ``credential.create``, ``credential.update``, ``credential.delete``,
``credential.use``, ``credentials.rotate_key``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from flowlite.db import Database
from flowlite.record import iso_now
from flowlite.tables import audit_log

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditPage",
    "Verification",
    "append",
    "list_entries",
    "record",
    "verify",
]

#: the "previous hash" of the first entry
GENESIS = "0" * 64
#: the Postgres advisory lock serialising appends (SQLite writes are serialised already)
_LOCK = 0x466C6F77  # "Flow"


class AuditEntry(msgspec.Struct):
    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    details: dict[str, Any]
    hash: str


class AuditPage(msgspec.Struct):
    data: list[AuditEntry]
    #: pass as ``before`` for the next (older) page; null at the end
    next_before: int | None


class Verification(msgspec.Struct):
    ok: bool
    entries: int
    #: the first entry whose hash does not match (edited, or after a deleted or moved entry)
    first_bad_seq: int | None = None
    reason: str = ""


def _digest(previous: str, entry: dict[str, Any]) -> str:
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((previous + canonical).encode()).hexdigest()


def _fields(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "outcome": row.outcome,
        "details": json.loads(row.details),
    }


async def append(
    connection: AsyncConnection,
    action: str,
    object_type: str,
    object_id: str,
    *,
    actor: str = "system",
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Append an entry inside the caller's write transaction."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))
    last = (
        await connection.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        )
    ).first()
    seq, previous = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = {
        "seq": seq,
        "at": iso_now(),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "details": details or {},
    }
    row = {**entry, "details": json.dumps(entry["details"], ensure_ascii=False)}
    await connection.execute(audit_log.insert().values(**row, hash=_digest(previous, entry)))


async def record(
    db: Database, action: str, object_type: str, object_id: str, **kwargs: Any
) -> None:
    """Append an entry in a transaction of its own."""
    async with db.write() as connection:
        await append(connection, action, object_type, object_id, **kwargs)


async def list_entries(
    db: Database, *, limit: int = 50, before: int | None = None, action: str | None = None
) -> AuditPage:
    """Entries, newest first; ``before`` a sequence number to page back from."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(audit_log.c.seq < before)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    async with db.read() as connection:
        rows = (await connection.execute(query)).all()
    entries = [AuditEntry(**_fields(row), hash=row.hash) for row in rows[:limit]]
    return AuditPage(entries, entries[-1].seq if len(rows) > limit else None)


async def verify(db: Database, *, batch: int = 1000) -> Verification:
    """Walk the chain from the first entry; report the first one that does not match."""
    previous, expected_seq, count = GENESIS, 1, 0
    async with db.read() as connection:
        after = 0
        while True:
            query = (
                select(audit_log)
                .where(audit_log.c.seq > after)
                .order_by(audit_log.c.seq)
                .limit(batch)
            )
            rows = (await connection.execute(query)).all()
            if not rows:
                return Verification(True, count)
            for row in rows:
                if row.seq != expected_seq:
                    reason = (
                        f"entry {expected_seq} is missing (deleted); the chain goes on at {row.seq}"
                    )
                    return Verification(False, count, row.seq, reason)
                try:
                    fields = _fields(row)
                except ValueError:
                    return Verification(
                        False, count, row.seq, f"entry {row.seq}: details are not JSON"
                    )
                if _digest(previous, fields) != row.hash:
                    reason = (
                        f"entry {row.seq} does not match its hash: it, or an entry before it, "
                        "was edited, deleted or reordered"
                    )
                    return Verification(False, count, row.seq, reason)
                previous, expected_seq, count = row.hash, expected_seq + 1, count + 1
            after = rows[-1].seq
