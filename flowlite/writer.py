"""The execution writer: one task that groups the writes of many concurrent executions.

One commit per execution caps a SQLite server near a thousand executions a second; grouping
every write that arrived while the previous commit ran into one transaction reaches twenty
times that. Writes of the same execution are merged (an execution that starts and finishes
between two commits is inserted once, already finished). A batch that fails is retried one
execution at a time, so one bad row cannot lose the others' writes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam

from flowlite.db import Database
from flowlite.tables import execution_data, executions

__all__ = ["ExecutionWriter"]

log = logging.getLogger(__name__)

#: the columns an execution's end changes
FINISH_COLUMNS = ("status", "finished_at", "error_message", "error_node")


@dataclass
class _Pending:
    id: str
    row: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    finish: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    discard: bool = False
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    settled: bool = False


class ExecutionWriter:
    """Queues execution writes and commits them in batches from a single task."""

    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: dict[str, _Pending] = {}
        #: the batch being committed now
        self._inflight: dict[str, _Pending] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0

    # -- queueing (synchronous: called from execution listeners) -------------------------
    def _entry(self, execution_id: str) -> _Pending:
        entry = self._pending.get(execution_id)
        if entry is None:
            entry = self._pending[execution_id] = _Pending(execution_id)
        self._wake.set()
        return entry

    def insert(self, row: dict[str, Any], inputs: bytes | None) -> None:
        """A new execution: its summary row and what it started with."""
        entry = self._entry(row["id"])
        entry.row = dict(row)
        entry.data = {"execution_id": row["id"], "inputs": inputs, "record": None, "spilled": False}

    def finish(
        self, execution_id: str, summary: dict[str, Any], record: bytes, spilled: bool
    ) -> asyncio.Future[None]:
        """An execution ended: its final summary columns and its compressed record."""
        entry = self._entry(execution_id)
        if entry.row is not None:
            entry.row.update(summary)
            assert entry.data is not None
            entry.data.update(record=record, spilled=spilled)
        else:
            entry.finish = {"_id": execution_id, **{f"_{c}": summary[c] for c in FINISH_COLUMNS}}
            entry.record = {"_id": execution_id, "_record": record, "_spilled": spilled}
        return self._waiter(entry)

    def discard(self, execution_id: str) -> asyncio.Future[None]:
        """Forget an execution (its workflow keeps no executions of this kind)."""
        entry = self._entry(execution_id)
        if entry.row is not None:  # never written: nothing to delete
            entry.row = entry.data = None
        entry.finish = entry.record = None
        entry.discard = True
        return self._waiter(entry)

    def _waiter(self, entry: _Pending) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(future)
        return future

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if not self._pending:
            return
        waiters = [self._waiter(entry) for entry in self._pending.values()]
        await asyncio.gather(*waiters, return_exceptions=True)

    def written(self, execution_id: str) -> asyncio.Future[None]:
        """Resolves when every write queued so far for the execution is committed (at once
        when none is pending). A webhook answers only after its execution is stored."""
        entry = self._pending.get(execution_id) or self._inflight.get(execution_id)
        if entry is None or entry.settled:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future
        return self._waiter(entry)

    @property
    def queued(self) -> int:
        return len(self._pending)

    # -- the writer task -----------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="execution-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch: dict[str, _Pending] = {}
                for key in list(self._pending)[: self.max_batch]:
                    batch[key] = self._pending.pop(key)
                self._inflight = batch
                try:
                    await self._commit(batch)
                finally:
                    self._inflight = {}
            if self._closing:
                return

    async def _commit(self, batch: dict[str, _Pending]) -> None:
        try:
            await self._write(list(batch.values()))
            self.commits += 1
        except Exception:
            if len(batch) == 1:
                log.exception("could not store execution %s", next(iter(batch)))
                self._settle(batch.values(), RuntimeError("the execution could not be stored"))
                return
            for key, entry in batch.items():  # isolate the bad write
                await self._commit({key: entry})
            return
        self._settle(batch.values(), None)

    @staticmethod
    def _settle(entries: Any, error: BaseException | None) -> None:
        for entry in entries:
            entry.settled = True
            for future in entry.waiters:
                if not future.done():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)

    async def _write(self, entries: list[_Pending]) -> None:
        rows = [e.row for e in entries if e.row is not None]
        data = [e.data for e in entries if e.data is not None]
        finishes = [e.finish for e in entries if e.finish is not None]
        records = [e.record for e in entries if e.record is not None]
        discards = [e.id for e in entries if e.discard]
        async with self.db.write() as connection:
            if rows:
                await connection.execute(executions.insert(), rows)
            if data:
                await connection.execute(execution_data.insert(), data)
            if finishes:
                await connection.execute(
                    executions.update()
                    .where(executions.c.id == bindparam("_id"))
                    .values({c: bindparam(f"_{c}") for c in FINISH_COLUMNS}),
                    finishes,
                )
            if records:
                await connection.execute(
                    execution_data.update()
                    .where(execution_data.c.execution_id == bindparam("_id"))
                    .values(record=bindparam("_record"), spilled=bindparam("_spilled")),
                    records,
                )
            if discards:
                await connection.execute(
                    execution_data.delete().where(execution_data.c.execution_id.in_(discards))
                )
                await connection.execute(executions.delete().where(executions.c.id.in_(discards)))
