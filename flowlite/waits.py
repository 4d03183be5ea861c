"""Long waits: the server's waiter parks executions in the database and resumes them.

A `wait` node whose wait is longer than ``wait_threshold_seconds`` (and that is all its
execution still has to do: no other branch runs beside it) parks the execution: a row in
``execution_waits`` holds the time to resume it, the execution ends its run with status
``waiting`` (its record, stored as usual, says which node waits with which items), and the
worker is free. Shorter waits, waits beside a running branch or in a sub-workflow, and waits in
manual runs (which may run an editor's unsaved draft) sleep in memory.

:class:`Waits` resumes a parked execution when its time comes (also after a restart: overdue
waits resume at start) or earlier, when its resume URL (``execution.resume_url``,
``/webhook-waiting/<id>``) is called; the request item then replaces the wait node's output.
Every resume claims the execution first (``UPDATE ... SET status='running' WHERE
status='waiting'``): with several processes, or a timer and a webhook at the same moment, one
resume wins and the others find it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import msgspec
from sqlalchemy import delete, func, insert, select, update

from flowlite.config import Config
from flowlite.db import Database
from flowlite.errors import NotFound
from flowlite.execution_store import decode_blob
from flowlite.executor import Execution, Suspend
from flowlite.record import TERMINAL, ExecutionRecord, Mode, Status
from flowlite.runner import Runner, Unavailable
from flowlite.schedules import Clock, utc_now
from flowlite.sdk import Item
from flowlite.store import Conflict, get_version
from flowlite.tables import execution_data, execution_waits, executions

__all__ = ["NotWaiting", "Waits"]

log = logging.getLogger(__name__)

#: how often the database is checked for waits parked by another process
POLL_SECONDS = 5.0
_BATCH = 200


class NotWaiting(Conflict):
    """The execution is not waiting (it was resumed already, or has ended)."""


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class Waits:
    """The engine's waiter and the loop that resumes parked executions."""

    def __init__(
        self, config: Config, db: Database, runner: Runner, clock: Clock | None = None
    ) -> None:
        self.threshold = config.wait_threshold_seconds
        self.db = db
        self.runner = runner
        self.clock: Clock = clock or utc_now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resuming: set[asyncio.Task[Any]] = set()

    # -- parking ------------------------------------------------------------------------
    async def waiter(self, execution: Execution, when: dt.datetime) -> None:
        """:data:`flowlite.executor.Waiter`: park long waits, sleep through short ones."""
        delay = (when - self.clock()).total_seconds()
        if (
            delay > self.threshold
            and execution.depth == 0
            and execution.mode != Mode.MANUAL  # a draft run: its document is not stored
            and execution.can_suspend()
        ):
            # the row of the execution must exist before a resume can claim it
            await self.runner.writer.written(execution.id)
            async with self.db.write() as connection:
                await connection.execute(
                    delete(execution_waits).where(execution_waits.c.execution_id == execution.id)
                )
                await connection.execute(
                    insert(execution_waits).values(
                        execution_id=execution.id, resume_at=_stamp(when)
                    )
                )
            self._wake.set()
            raise Suspend(when)
        if delay > 0:
            await asyncio.sleep(delay)

    # -- resuming -----------------------------------------------------------------------
    async def resume(self, execution_id: str, items: list[Item] | None = None) -> Execution:
        """Resume a waiting execution now (``items``: the wait node's output instead of its
        input). Raises :class:`NotWaiting` when it is not waiting, NotFound when unknown."""
        claimed = await self._claim(execution_id)
        if claimed is None:
            async with self.db.read() as connection:
                status = (
                    await connection.execute(
                        select(executions.c.status).where(executions.c.id == execution_id)
                    )
                ).scalar()
            if status is None:
                raise NotFound(f"no execution with id {execution_id!r}")
            raise NotWaiting(f"execution {execution_id!r} is not waiting ({status})")
        record, document = claimed
        return await self._start_claimed(record, document, items)

    async def _start_claimed(
        self, record: ExecutionRecord, document: dict[str, Any], items: list[Item] | None
    ) -> Execution:
        try:
            return self._start(record, document, items)
        except Unavailable:  # shutting down: it waits again, for the next start
            async with self.db.write() as connection:
                await connection.execute(
                    update(executions)
                    .where(executions.c.id == record.id)
                    .values(status=Status.WAITING)
                )
                until = (record.wait or {}).get("until")
                resume_at = _stamp(dt.datetime.fromisoformat(until)) if until else None
                await connection.execute(
                    insert(execution_waits).values(execution_id=record.id, resume_at=resume_at)
                )
            raise

    async def _claim(self, execution_id: str) -> tuple[ExecutionRecord, dict[str, Any]] | None:
        async with self.db.write() as connection:
            claimed = await connection.execute(
                update(executions)
                .where(executions.c.id == execution_id, executions.c.status == Status.WAITING)
                .values(status=Status.RUNNING, finished_at=None)
            )
            if claimed.rowcount != 1:
                return None
            await connection.execute(
                delete(execution_waits).where(execution_waits.c.execution_id == execution_id)
            )
            blob = (
                await connection.execute(
                    select(execution_data.c.record).where(
                        execution_data.c.execution_id == execution_id
                    )
                )
            ).scalar()
        try:
            if blob is None:
                raise NotFound(f"execution {execution_id!r} has no stored record to resume")
            record = msgspec.convert(decode_blob(blob), ExecutionRecord)
            if record.workflow.id is None or record.workflow.version is None:
                raise NotFound(f"execution {execution_id!r} belongs to no stored workflow")
            version = await get_version(self.db, record.workflow.id, record.workflow.version)
        except NotFound as exc:  # claimed but impossible to run: it ends in error
            async with self.db.write() as connection:
                await connection.execute(
                    update(executions)
                    .where(executions.c.id == execution_id)
                    .values(
                        status=Status.ERROR,
                        finished_at=_stamp(self.clock()),
                        error_message=f"could not resume: {exc.message}",
                    )
                )
            raise
        return record, version.document

    def _start(
        self, record: ExecutionRecord, document: dict[str, Any], items: list[Item] | None
    ) -> Execution:
        workflow_id, version = record.workflow.id, record.workflow.version
        assert workflow_id is not None and version is not None
        return self.runner.start(
            workflow_id,
            version,
            document,
            items=items,
            active=True,
            stored=True,
            resume=record,
        )

    # -- the loop -------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(), name="wait-resumer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                delay = await self.resume_due()
            except Exception:
                log.exception("resuming waiting executions failed")
                delay = POLL_SECONDS
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def resume_due(self) -> float:
        """Resume every wait that is due; returns the seconds until the next one (at most
        :data:`POLL_SECONDS`)."""
        now = self.clock()
        stamp = _stamp(now)
        async with self.db.read() as connection:
            due = (
                await connection.execute(
                    select(execution_waits.c.execution_id)
                    .where(execution_waits.c.resume_at <= stamp)
                    .order_by(execution_waits.c.resume_at)
                    .limit(_BATCH)
                )
            ).scalars()
            due_ids = list(due)
            following = (
                await connection.execute(
                    select(func.min(execution_waits.c.resume_at)).where(
                        execution_waits.c.resume_at > stamp
                    )
                )
            ).scalar()
        retry = False
        for execution_id in due_ids:
            try:
                claimed = await self._claim(execution_id)
            except NotFound as exc:
                log.warning("cannot resume execution %s: %s", execution_id, exc.message)
                await self._forget(execution_id)
                continue
            if claimed is None:
                retry |= await self._unclaimed(execution_id)
                continue
            try:
                await self._start_claimed(*claimed, None)
            except Unavailable:
                return POLL_SECONDS
            except Exception:
                log.exception("resuming execution %s failed", execution_id)
        if len(due_ids) == _BATCH:
            return 0.0  # more are due
        if retry:
            return 0.2
        if following is None:
            return POLL_SECONDS
        seconds = (
            dt.datetime.fromisoformat(following.replace("Z", "+00:00")) - now
        ).total_seconds()
        return min(max(seconds, 0.0), POLL_SECONDS)

    async def _unclaimed(self, execution_id: str) -> bool:
        """A due wait whose execution is not `waiting`: forget it once the execution ended or
        is gone; True while its record is still being stored (try again soon)."""
        async with self.db.read() as connection:
            status = (
                await connection.execute(
                    select(executions.c.status).where(executions.c.id == execution_id)
                )
            ).scalar()
        if status is None or status in TERMINAL:
            await self._forget(execution_id)
            return False
        return self.runner.live(execution_id) is not None

    async def _forget(self, execution_id: str) -> None:
        async with self.db.write() as connection:
            await connection.execute(
                delete(execution_waits).where(execution_waits.c.execution_id == execution_id)
            )
