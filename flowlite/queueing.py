"""Concurrency limits for production executions, and their queue in the database.

Production executions (modes ``webhook`` and ``schedule``) start through
:class:`ExecutionQueue`. While ``concurrency_limit`` of them run (all workflows together), or
``workflow_concurrency_limit`` run for one workflow, a new one is stored with status ``queued``
and started, first in first out, when a running one ends or parks in a long wait. Queued
executions are listed by the API like any other (``status=queued``) and survive a restart:
:meth:`ExecutionQueue.restore` loads every ``queued`` row again on start.

Starting a queued row claims it first (``UPDATE ... SET status='running' WHERE
status='queued'``), so that two processes sharing a database never both run it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import select, update

from flowlite.config import Config
from flowlite.db import Database
from flowlite.errors import FlowliteError
from flowlite.execution_store import CRASH_MESSAGE, decode_blob, encode_blob
from flowlite.executor import Execution
from flowlite.model import Workflow
from flowlite.record import ErrorInfo, ExecutionRecord, Mode, Status, iso_now
from flowlite.runner import Runner, Unavailable
from flowlite.sdk import Item, WebhookResponse
from flowlite.store import get_version, new_id
from flowlite.tables import execution_data, executions

__all__ = ["ExecutionQueue", "Job", "queued_inputs", "queued_row", "recover_running"]

log = logging.getLogger(__name__)

#: the modes the limits apply to
PRODUCTION = frozenset({Mode.WEBHOOK, Mode.SCHEDULE})


@dataclass
class Job:
    """An execution to start: a workflow version, a mode, a trigger node and its items."""

    workflow_id: str
    workflow_name: str
    version: int
    document: dict[str, Any]
    mode: str
    items: list[Item] | None
    node: str | None
    #: the parsed document (saves a parse; a test webhook's draft has no stored version)
    workflow: Workflow | None = None
    id: str = field(default_factory=new_id)
    responder: Callable[[WebhookResponse], None] | None = None
    #: set when the caller waits: resolved with the execution once it starts
    started: asyncio.Future[Execution] | None = None
    #: set when the caller waits: resolved with the record once it ended and is stored
    ended: asyncio.Future[ExecutionRecord | None] | None = None


def queued_row(job: Job) -> dict[str, Any]:
    """The ``executions`` row of a job stored before it runs."""
    return {
        "id": job.id,
        "workflow_id": job.workflow_id,
        "workflow_name": job.workflow_name,
        "workflow_version": job.version,
        "mode": job.mode,
        "status": Status.QUEUED,
        "started_at": iso_now(),
        "finished_at": None,
        "error_message": None,
        "error_node": None,
        "retry_of": None,
    }


def queued_inputs(job: Job) -> bytes:
    """What the job starts with, as stored in ``execution_data.inputs``."""
    return encode_blob({"items": job.items, "start": job.node})


@dataclass
class _Entry:
    workflow_id: str
    #: the job, when this process queued it (it may have a responder); None after a restart
    job: Job | None


class ExecutionQueue:
    """Starts production executions within the concurrency limits, queueing the rest."""

    def __init__(self, config: Config, db: Database, runner: Runner) -> None:
        self.limit = config.concurrency_limit
        self.workflow_limit = config.workflow_concurrency_limit
        self.db = db
        self.runner = runner
        #: production executions running now, in total and per workflow
        self.total = 0
        self.running: dict[str, int] = {}
        self._fifo: OrderedDict[str, _Entry] = OrderedDict()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    # -- limits ---------------------------------------------------------------------------
    def _has_room(self, workflow_id: str) -> bool:
        if self.limit and self.total >= self.limit:
            return False
        return not (self.workflow_limit and self.running.get(workflow_id, 0) >= self.workflow_limit)

    def _queued_before(self, workflow_id: str) -> bool:
        """An earlier job waits that this one must not overtake."""
        if not self._fifo:
            return False
        if self.limit:
            return True
        return any(entry.workflow_id == workflow_id for entry in self._fifo.values())

    def _count(self, workflow_id: str, step: int) -> None:
        self.total += step
        count = self.running.get(workflow_id, 0) + step
        if count > 0:
            self.running[workflow_id] = count
        else:
            self.running.pop(workflow_id, None)

    @property
    def queued(self) -> int:
        return len(self._fifo)

    def snapshot(self) -> dict[str, Any]:
        """Running and queued counts, and the limits (for the API)."""
        return {
            "running": self.total,
            "queued": len(self._fifo),
            "running_by_workflow": dict(self.running),
            "concurrency_limit": self.limit,
            "workflow_concurrency_limit": self.workflow_limit,
        }

    # -- starting -------------------------------------------------------------------------
    async def submit(self, job: Job, *, stored: bool = False) -> None:
        """Start ``job`` now when the limits allow, else queue it.

        ``stored``: its ``queued`` row is committed already (a webhook answered at once, a
        schedule slot); otherwise a queued job's row is stored before this returns.
        """
        if self._closed:
            raise Unavailable("the server is shutting down and starts no new execution")
        unlimited = job.mode not in PRODUCTION  # e.g. a test webhook's manual run
        if unlimited or (
            self._has_room(job.workflow_id) and not self._queued_before(job.workflow_id)
        ):
            self._start(job, stored=stored)
            return
        if not stored:
            writer = self.runner.writer
            writer.insert(queued_row(job), queued_inputs(job))
            await writer.written(job.id)
        self._fifo[job.id] = _Entry(job.workflow_id, job)
        self._kick()

    def _start(self, job: Job, *, stored: bool) -> Execution:
        execution = self.runner.start(
            job.workflow_id,
            job.version,
            job.document,
            mode=job.mode,
            items=job.items,
            start=job.node,
            active=True,
            execution_id=job.id,
            stored=stored,
            responder=job.responder,
            workflow=job.workflow,
        )
        counted = job.mode in PRODUCTION
        if counted:
            self._count(job.workflow_id, 1)
        task = self.runner.task(execution.id)
        if task is not None:
            task.add_done_callback(lambda done: self._ended(job, counted, done))
        if job.started is not None and not job.started.done():
            job.started.set_result(execution)
        return execution

    def _ended(self, job: Job, counted: bool, task: asyncio.Task[ExecutionRecord]) -> None:
        if counted:
            self._count(job.workflow_id, -1)
        if job.ended is not None and not job.ended.done():
            record = None if task.cancelled() or task.exception() else task.result()
            job.ended.set_result(record)
        self._kick()

    # -- the queue ------------------------------------------------------------------------
    async def restore(self) -> int:
        """Queue the ``queued`` rows of the database (after a restart); returns how many."""
        query = (
            select(executions.c.id, executions.c.workflow_id)
            .where(executions.c.status == Status.QUEUED)
            .order_by(executions.c.id)
        )
        async with self.db.read() as connection:
            rows = (await connection.execute(query)).all()
        for execution_id, workflow_id in rows:
            if execution_id not in self._fifo:
                self._fifo[execution_id] = _Entry(workflow_id or "", None)
        self._kick()
        return len(rows)

    def _kick(self) -> None:
        if self._closed or not self._fifo:
            return
        if self._dispatcher is None or self._dispatcher.done():
            loop = asyncio.get_running_loop()
            self._dispatcher = loop.create_task(self._dispatch(), name="execution-queue")

    async def _dispatch(self) -> None:
        while not self._closed:
            found = next(
                ((key, e) for key, e in self._fifo.items() if self._has_room(e.workflow_id)),
                None,
            )
            if found is None:
                return
            execution_id, entry = found
            del self._fifo[execution_id]
            self._count(entry.workflow_id, 1)  # hold the slot while claiming
            try:
                job = await self._claim(execution_id, entry)
            except FlowliteError as exc:
                log.warning("queued execution %s cannot start: %s", execution_id, exc.message)
                await self._fail(execution_id, exc.message)
                job = None
            except Exception:
                log.exception("queued execution %s could not be claimed", execution_id)
                job = None
            finally:
                self._count(entry.workflow_id, -1)
            if job is None:
                continue
            try:
                self._start(job, stored=True)
            except Unavailable:
                return  # shutting down: the row is `running` and is marked crashed
            except FlowliteError as exc:
                await self._fail(execution_id, exc.message)

    async def _claim(self, execution_id: str, entry: _Entry) -> Job | None:
        """Take a queued row for this process; None when it is gone or another took it."""
        async with self.db.write() as connection:
            claimed = await connection.execute(
                update(executions)
                .where(executions.c.id == execution_id, executions.c.status == Status.QUEUED)
                .values(status=Status.RUNNING)
            )
            if claimed.rowcount != 1:
                return None
            row = (
                await connection.execute(
                    select(
                        executions.c.workflow_id,
                        executions.c.workflow_name,
                        executions.c.workflow_version,
                        executions.c.mode,
                        execution_data.c.inputs,
                    )
                    .select_from(executions.outerjoin(execution_data))
                    .where(executions.c.id == execution_id)
                )
            ).one()
        if entry.job is not None:
            return entry.job
        workflow_id, name, version, mode, blob = row
        inputs = decode_blob(blob) if blob is not None else {}
        detail = await get_version(self.db, workflow_id, version)
        return Job(
            workflow_id,
            name,
            version,
            detail.document,
            mode,
            inputs.get("items"),
            inputs.get("start"),
            id=execution_id,
        )

    async def _fail(self, execution_id: str, message: str) -> None:
        async with self.db.write() as connection:
            await connection.execute(
                update(executions)
                .where(executions.c.id == execution_id)
                .values(status=Status.ERROR, finished_at=iso_now(), error_message=message)
            )

    async def close(self) -> None:
        """Start nothing more; queued executions stay in the database for the next start."""
        self._closed = True
        if self._dispatcher is not None and not self._dispatcher.done():
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)


async def recover_running(db: Database) -> list[str]:
    """Mark executions a dead process left ``running`` as ``crashed``; returns their ids.

    ``queued`` executions are kept (the queue runs them) and ``waiting`` ones too (they resume).
    A stored record (of an execution that was queued or waiting before) is marked as well.
    """
    now = iso_now()
    async with db.write() as connection:
        rows = (
            await connection.execute(
                select(executions.c.id, execution_data.c.record)
                .select_from(executions.outerjoin(execution_data))
                .where(executions.c.status == Status.RUNNING)
            )
        ).all()
        if not rows:
            return []
        ids = [row[0] for row in rows]
        await connection.execute(
            update(executions)
            .where(executions.c.id.in_(ids), executions.c.status == Status.RUNNING)
            .values(status=Status.CRASHED, finished_at=now, error_message=CRASH_MESSAGE)
        )
        for execution_id, blob in rows:
            if blob is None:
                continue
            record = decode_blob(blob)  # kept as data: spilled outputs keep their references
            error = ErrorInfo(CRASH_MESSAGE, "Crashed", origin="internal")
            record.update(status=Status.CRASHED, finished_at=now, error=msgspec.to_builtins(error))
            await connection.execute(
                update(execution_data)
                .where(execution_data.c.execution_id == execution_id)
                .values(record=encode_blob(record))
            )
    return ids
