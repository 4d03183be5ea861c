"""Stored executions: summaries, compressed records, listing, deletion, retention and recovery.

Writes made while executions run go through :class:`flowlite.writer.ExecutionWriter`; this
module holds the reads and the maintenance writes (deletes, pruning, crash recovery).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flowlite.db import Database
from flowlite.errors import NotFound
from flowlite.record import TERMINAL, ErrorInfo, ExecutionRecord, Status, WorkflowRef, iso_now
from flowlite.store import BadInput
from flowlite.tables import execution_data, executions

__all__ = [
    "CRASH_MESSAGE",
    "ExecutionPage",
    "ExecutionSummary",
    "decode_blob",
    "delete_executions",
    "encode_blob",
    "get_summary",
    "list_executions",
    "load_inputs",
    "load_record",
    "normalize_time",
    "prune_batch",
    "recover_crashed",
]

CRASH_MESSAGE = "the process running it stopped"

_encoder = msgspec.json.Encoder()


class ExecutionSummary(msgspec.Struct):
    id: str
    workflow_id: str | None
    workflow_name: str
    workflow_version: int | None
    mode: str
    status: str
    started_at: str
    finished_at: str | None
    error: str | None
    error_node: str | None
    retry_of: str | None


class ExecutionPage(msgspec.Struct):
    data: list[ExecutionSummary]
    #: pass as ``cursor`` to get the next page; ``None`` on the last page
    next_cursor: str | None


_SUMMARY_COLUMNS = (
    executions.c.id,
    executions.c.workflow_id,
    executions.c.workflow_name,
    executions.c.workflow_version,
    executions.c.mode,
    executions.c.status,
    executions.c.started_at,
    executions.c.finished_at,
    executions.c.error_message,
    executions.c.error_node,
    executions.c.retry_of,
)


def encode_blob(value: Any) -> bytes:
    """JSON, zlib-compressed (level 1: the writer's time matters more than a few bytes)."""
    return zlib.compress(_encoder.encode(value), 1)


def decode_blob(blob: bytes) -> Any:
    return msgspec.json.decode(zlib.decompress(blob))


def normalize_time(text: str, label: str) -> str:
    """An ISO 8601 time as the stored form (UTC, milliseconds, ``Z``)."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"{label}: {text!r} is not an ISO 8601 time (e.g. 2026-11-21T10:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


async def list_executions(
    db: Database,
    *,
    workflow_id: str | None = None,
    status: Sequence[str] = (),
    mode: Sequence[str] = (),
    started_after: str | None = None,
    started_before: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ExecutionPage:
    """Summaries, newest first; ``cursor`` is the last id of the previous page."""
    conditions = []
    if workflow_id is not None:
        conditions.append(executions.c.workflow_id == workflow_id)
    if status:
        conditions.append(executions.c.status.in_(list(status)))
    if mode:
        conditions.append(executions.c.mode.in_(list(mode)))
    if started_after is not None:
        conditions.append(executions.c.started_at >= started_after)
    if started_before is not None:
        conditions.append(executions.c.started_at < started_before)
    if cursor is not None:
        conditions.append(executions.c.id < cursor)
    query = (
        select(*_SUMMARY_COLUMNS)
        .where(*conditions)
        .order_by(executions.c.id.desc())
        .limit(limit + 1)
    )
    async with db.read() as connection:
        rows = (await connection.execute(query)).all()
    data = [ExecutionSummary(*row) for row in rows[:limit]]
    return ExecutionPage(data, data[-1].id if len(rows) > limit else None)


async def get_summary(db: Database, execution_id: str) -> ExecutionSummary:
    async with db.read() as connection:
        row = (
            await connection.execute(
                select(*_SUMMARY_COLUMNS).where(executions.c.id == execution_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"no execution with id {execution_id!r}")
    return ExecutionSummary(*row)


def _record_from_summary(summary: ExecutionSummary) -> dict[str, Any]:
    """The record of an execution that never stored one (it crashed, or is still running)."""
    record = ExecutionRecord(
        id=summary.id,
        workflow=WorkflowRef(summary.workflow_id, summary.workflow_name, summary.workflow_version),
        mode=summary.mode,
        status=summary.status,
        started_at=summary.started_at,
        finished_at=summary.finished_at,
        error=ErrorInfo(summary.error, "Crashed", origin="internal")
        if summary.status == Status.CRASHED and summary.error
        else None,
    )
    data: dict[str, Any] = msgspec.to_builtins(record)
    return data


async def load_record(db: Database, execution_id: str) -> tuple[ExecutionSummary, dict[str, Any]]:
    """The summary and the stored record (as JSON data) of an execution."""
    summary = await get_summary(db, execution_id)
    async with db.read() as connection:
        blob = (
            await connection.execute(
                select(execution_data.c.record).where(execution_data.c.execution_id == execution_id)
            )
        ).scalar()
    if blob is None:
        return summary, _record_from_summary(summary)
    record: dict[str, Any] = decode_blob(blob)
    return summary, record


async def load_inputs(db: Database, execution_id: str) -> dict[str, Any]:
    """What an execution started with: ``{"items": [...] | None, "start": node | None}``."""
    async with db.read() as connection:
        blob = (
            await connection.execute(
                select(execution_data.c.inputs).where(execution_data.c.execution_id == execution_id)
            )
        ).scalar()
    if blob is None:
        return {"items": None, "start": None}
    inputs: dict[str, Any] = decode_blob(blob)
    return inputs


async def _delete(connection: AsyncConnection, ids: list[str]) -> None:
    await connection.execute(execution_data.delete().where(execution_data.c.execution_id.in_(ids)))
    await connection.execute(executions.delete().where(executions.c.id.in_(ids)))


async def delete_executions(db: Database, ids: list[str]) -> None:
    if ids:
        async with db.write() as connection:
            await _delete(connection, ids)


async def prune_batch(
    db: Database,
    *,
    older_than: str | None,
    keep: int,
    batch: int = 500,
) -> list[str]:
    """Delete up to ``batch`` finished executions started before ``older_than`` or beyond the
    newest ``keep`` (0: no count limit); returns their ids."""
    finished = executions.c.status.in_([str(s) for s in TERMINAL])
    async with db.read() as connection:
        ids: list[str] = []
        if older_than is not None:
            ids = list(
                (
                    await connection.execute(
                        select(executions.c.id)
                        .where(finished, executions.c.started_at < older_than)
                        .order_by(executions.c.id)
                        .limit(batch)
                    )
                ).scalars()
            )
        if keep > 0 and len(ids) < batch:
            boundary = (
                await connection.execute(
                    select(executions.c.id)
                    .order_by(executions.c.id.desc())
                    .offset(keep - 1)
                    .limit(1)
                )
            ).scalar()
            if boundary is not None:
                more = (
                    await connection.execute(
                        select(executions.c.id)
                        .where(finished, executions.c.id < boundary)
                        .order_by(executions.c.id)
                        .limit(batch - len(ids))
                    )
                ).scalars()
                ids = list(dict.fromkeys([*ids, *more]))
    await delete_executions(db, ids)
    return ids


async def recover_crashed(db: Database) -> list[str]:
    """Mark executions a dead process left unfinished as ``crashed``; returns their ids."""
    unfinished = [Status.QUEUED, Status.RUNNING, Status.WAITING]
    async with db.write() as connection:
        ids = list(
            (
                await connection.execute(
                    select(executions.c.id).where(executions.c.status.in_(unfinished))
                )
            ).scalars()
        )
        if ids:
            await connection.execute(
                executions.update()
                .where(executions.c.status.in_(unfinished))
                .values(
                    status=Status.CRASHED,
                    finished_at=iso_now(),
                    error_message=CRASH_MESSAGE,
                )
            )
    return ids
