"""The server's side of executions: starts them, records them and publishes their progress.

:class:`Runner` is the engine's :class:`~flowlite.executor.ExecutionListener`. Its callbacks are
synchronous and cheap: they queue writes to the :class:`~flowlite.writer.ExecutionWriter`, spill
large node outputs to the data directory (:mod:`flowlite.spill`) and publish events on the
:class:`~flowlite.events.EventHub`. An execution's summary row is written when it starts (so a
crash leaves it ``running``, to be marked ``crashed`` on the next start) and its record when it
ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from flowlite.config import Config
from flowlite.db import Database
from flowlite.errors import FlowliteError, NotFound, UserError
from flowlite.events import EventHub
from flowlite.execution_store import encode_blob
from flowlite.executor import CodeRunner, Engine, Execution
from flowlite.model import Workflow, workflow_from_dict
from flowlite.record import ErrorInfo, ExecutionRecord, Mode, NodeRun, Status
from flowlite.registry import Registry
from flowlite.sdk import Item, WebhookResponse
from flowlite.spill import SpillRef, remove_execution_files, spill_output
from flowlite.store import current_version, find_workflow, get_version, new_id
from flowlite.writer import ExecutionWriter

__all__ = ["Runner", "Unavailable", "env_credentials", "record_document"]

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "the server stopped before the execution finished"
_BIG_RECORD_ITEMS = 5000
_CACHE_SIZE = 256
#: seconds a workflow's current version is remembered (see Runner.current)
CURRENT_TTL = 1.0

Spilled = dict[tuple[str, int], dict[str, SpillRef]]


class Unavailable(FlowliteError):
    """The server is shutting down and starts no new execution."""


def record_document(record: ExecutionRecord, spilled: Spilled | None) -> Any:
    """The record as stored: spilled outputs carry ``spilled: {output: ref}`` on their run."""
    if not spilled:
        return record
    data: dict[str, Any] = msgspec.to_builtins(record)
    for (node, index), refs in spilled.items():
        run = data["nodes"][node]["runs"][index]
        run["spilled"] = msgspec.to_builtins(refs)
    return data


async def env_credentials(reference: str, *, workflow_id: str | None) -> dict[str, Any]:
    """The credential named ``reference`` from the variable ``FLOWLITE_CREDENTIAL_<NAME>`` (the
    name upper-cased, other characters than letters and digits as ``_``), holding a JSON object.

    The interim credential source until the credential store exists; it replaces this function.
    """
    variable = "FLOWLITE_CREDENTIAL_" + re.sub(r"[^A-Za-z0-9]", "_", reference).upper()
    text = os.environ.get(variable)
    if text is None:
        raise NotFound(f"credential {reference!r} is not set: define {variable} (a JSON object)")
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UserError(f"credential {reference!r}: {variable} does not hold a JSON object")
    return value


_encode = msgspec.json.encode


def _obviously_small(items: list[Item], threshold: int) -> bool:
    """Whether a few items encode to less than ``threshold`` (a quick answer for the common
    small output; longer outputs are measured chunk by chunk while spilling)."""
    try:
        return len(items) <= 16 and len(_encode(items)) <= threshold
    except (TypeError, msgspec.EncodeError):
        return True  # not JSON: the record's encoding reports it


def _encode_record(record: ExecutionRecord, spilled: Spilled | None) -> bytes:
    """The compressed record; when some output is not JSON, the record without outputs and an
    error saying so (a listener must not fail the execution it records)."""
    try:
        return encode_blob(record_document(record, spilled))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        log.warning(
            "execution %s: its record is not JSON (%s); stored without outputs", record.id, exc
        )
        data: dict[str, Any] = msgspec.to_builtins(record, enc_hook=lambda value: repr(value)[:200])
        for node in data.get("nodes", {}).values():
            for run in node.get("runs", []):
                run["outputs"] = {}
        data["storage_error"] = f"node outputs could not be stored as JSON: {exc}"
        return encode_blob(data)


def _item_count(record: ExecutionRecord) -> int:
    return sum(
        len(items)
        for node in record.nodes.values()
        for run in node.runs
        for items in run.outputs.values()
    )


def _ignore(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # logged by the writer; retrieved so asyncio does not warn


class Runner:
    """Starts executions for the API and records what they do."""

    def __init__(
        self,
        config: Config,
        db: Database,
        registry: Registry,
        writer: ExecutionWriter,
        hub: EventHub,
        code_runner: CodeRunner | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.writer = writer
        self.hub = hub
        self.engine = Engine(
            registry,
            resolver=self._resolve,
            credentials=env_credentials,
            code_runner=code_runner,
            listener=self,
            timezone=config.timezone,
            base_url=config.public_url,
            new_id=new_id,
        )
        self.accepting = True
        self._runs: dict[str, asyncio.Task[ExecutionRecord]] = {}
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._meta: dict[str, tuple[str | None, dict[str, Any]]] = {}
        self._spilled: dict[str, Spilled] = {}
        #: finished executions whose record is not committed yet, with the commit's future
        self._storing: dict[str, tuple[ExecutionRecord, asyncio.Future[None]]] = {}
        self._abandoned: set[str] = set()
        self._workflows: OrderedDict[tuple[str, int], Workflow] = OrderedDict()
        self._current: dict[str, tuple[int, float, int, bool, Workflow]] = {}
        #: executions whose row is stored already (queued, or waiting to resume): updated, not inserted
        self._prestored: set[str] = set()

    # -- starting -----------------------------------------------------------------------
    def workflow(self, workflow_id: str, version: int, document: dict[str, Any]) -> Workflow:
        """The parsed workflow of a stored version (versions never change, so it is cached)."""
        key = (workflow_id, version)
        workflow = self._workflows.get(key)
        if workflow is None:
            workflow = workflow_from_dict(document)
            self._workflows[key] = workflow
            if len(self._workflows) > _CACHE_SIZE:
                self._workflows.popitem(last=False)
        else:
            self._workflows.move_to_end(key)
        return workflow

    def cached(self, workflow_id: str, version: int) -> Workflow | None:
        """The parsed workflow of a stored version, when it is in the cache."""
        return self._workflows.get((workflow_id, version))

    async def current(self, workflow_id: str) -> tuple[int, bool, Workflow]:
        """A workflow's current version number, active flag and parsed document.

        Remembered until this process changes a workflow (``Database.workflow_generation``) or
        for :data:`CURRENT_TTL` seconds, the delay another process's change (`flowlite import`
        next to the server, a second server on Postgres) may take to be seen here.
        """
        generation = self.db.workflow_generation
        now = time.monotonic()
        entry = self._current.get(workflow_id)
        if entry is not None and entry[0] == generation and now - entry[1] < CURRENT_TTL:
            return entry[2], entry[3], entry[4]
        version, active = await current_version(self.db, workflow_id)
        workflow = self.cached(workflow_id, version)
        if workflow is None:
            document = (await get_version(self.db, workflow_id, version)).document
            workflow = self.workflow(workflow_id, version, document)
        if len(self._current) >= _CACHE_SIZE:
            self._current.clear()
        self._current[workflow_id] = (generation, now, version, active, workflow)
        return version, active, workflow

    def start(
        self,
        workflow_id: str,
        version: int,
        document: dict[str, Any],
        *,
        mode: str = Mode.MANUAL,
        items: list[Item] | None = None,
        start: str | None = None,
        retry_of: str | None = None,
        seed: dict[str, list[Item]] | None = None,
        active: bool = False,
        execution_id: str | None = None,
        stored: bool = False,
        responder: Callable[[WebhookResponse], None] | None = None,
        workflow: Workflow | None = None,
        resume: ExecutionRecord | None = None,
    ) -> Execution:
        """Validate and start an execution in the background; returns it (its id is set).

        Triggers pass: ``execution_id`` made in advance; ``stored`` when its row exists already
        (a queued execution, or a waiting one); ``responder`` for `respond_to_webhook`;
        ``workflow``, a parsed document used instead of the stored version (a test webhook
        runs the editor's draft); ``resume``, the record of a `waiting` execution to continue
        (``items``, when given, are the wait node's output).
        """
        if not self.accepting:
            raise Unavailable("the server is shutting down and starts no new execution")
        parsed = workflow if workflow is not None else self.workflow(workflow_id, version, document)
        try:
            if resume is not None:
                execution = self.engine.resume(
                    parsed, resume, items, responder=responder, active=active
                )
            else:
                execution = self.engine.prepare(
                    parsed,
                    workflow_id=workflow_id,
                    workflow_version=version,
                    mode=mode,
                    items=items,
                    start=start,
                    active=active,
                    execution_id=execution_id,
                    responder=responder,
                )
        except NotFound as exc:  # a start node that does not exist: a bad request, not a 404
            raise UserError(exc.message) from None
        if seed:
            # outputs of the nodes that ran before, so that expressions such as node("X") work
            execution._latest.update(seed)
        if stored:
            self._prestored.add(execution.id)
        else:
            self._meta[execution.id] = (retry_of, {"items": items, "start": start})
        task = asyncio.get_running_loop().create_task(self._run(execution))
        self._runs[execution.id] = task
        task.add_done_callback(lambda _: self._runs.pop(execution.id, None))
        return execution

    async def _run(self, execution: Execution) -> ExecutionRecord:
        record = await execution.run()
        stored = self._storing.get(execution.id)
        if stored is not None:
            await asyncio.shield(stored[1])
        return record

    async def wait(self, execution_id: str) -> ExecutionRecord | None:
        """Wait for an execution this process started to end and be stored."""
        task = self._runs.get(execution_id)
        if task is None:
            return None
        return await asyncio.shield(task)

    def task(self, execution_id: str) -> asyncio.Task[ExecutionRecord] | None:
        """The task running an execution this process started (done once it is stored)."""
        return self._runs.get(execution_id)

    def live(self, execution_id: str) -> tuple[ExecutionRecord, Spilled] | None:
        """The in-memory record of an execution that runs now or is not stored yet."""
        execution = self.engine.running.get(execution_id)
        if execution is not None:
            return execution.record, self._spilled.get(execution_id, {})
        stored = self._storing.get(execution_id)
        if stored is not None:
            return stored[0], self._spilled.get(execution_id, {})
        return None

    def cancel(self, execution_id: str, reason: str = "canceled through the API") -> bool:
        return self.engine.cancel(execution_id, reason)

    async def _resolve(
        self, reference: str, *, caller: Workflow | None
    ) -> tuple[str | None, Workflow]:
        detail, version = await find_workflow(self.db, reference)
        return detail.id, self.workflow(detail.id, version, detail.document)

    # -- the listener ---------------------------------------------------------------------
    def execution_started(self, execution: Execution) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks[execution.id] = task
        record = execution.record
        if execution.id in self._prestored:
            self._prestored.discard(execution.id)
            self._mark_running(execution)
            return
        retry_of, inputs = self._meta.pop(
            execution.id, (None, {"items": execution.trigger_items, "start": None})
        )
        row = {
            "id": execution.id,
            "workflow_id": record.workflow.id,
            "workflow_name": record.workflow.name,
            "workflow_version": record.workflow.version,
            "mode": record.mode,
            "status": record.status,
            "started_at": record.started_at,
            "finished_at": None,
            "error_message": None,
            "error_node": None,
            "retry_of": retry_of,
        }
        self.writer.insert(row, encode_blob(inputs))
        if self.hub.has_subscribers(execution.id):
            self.hub.publish(execution.id, {"event": "execution_started", **row})

    def _mark_running(self, execution: Execution) -> None:
        """A stored execution (queued, or waiting) starts: its row becomes ``running``."""
        record = execution.record
        columns = {
            "status": str(record.status),
            "finished_at": None,
            "error_message": None,
            "error_node": None,
        }
        blob = encode_blob(record_document(record, None))
        # the writer's update of an existing row; nobody waits for this one
        self.writer.finish(execution.id, columns, blob, False).add_done_callback(_ignore)
        if self.hub.has_subscribers(execution.id):
            event = {"event": "execution_started", "id": execution.id, **columns}
            self.hub.publish(execution.id, event)

    def node_started(self, execution: Execution, node: str, run_index: int) -> None:
        if self.hub.has_subscribers(execution.id):
            event = {
                "event": "node_started",
                "execution_id": execution.id,
                "node": node,
                "run_index": run_index,
            }
            self.hub.publish(execution.id, event)

    def node_finished(self, execution: Execution, node: str, run: NodeRun) -> None:
        threshold = self.config.spill_threshold_bytes
        if threshold and run.outputs:
            self._spill(execution.id, node, run, threshold)
        if self.hub.has_subscribers(execution.id):
            counts = {name: len(items) for name, items in run.outputs.items()}
            spilled = self._spilled.get(execution.id, {}).get((node, run.index))
            if spilled:
                counts.update({name: ref.items for name, ref in spilled.items()})
            event = {
                "event": "node_finished",
                "execution_id": execution.id,
                "node": node,
                "run_index": run.index,
                "status": run.status,
                "duration_ms": run.duration_ms,
                "items": counts,
                "error": msgspec.to_builtins(run.error) if run.error else None,
            }
            self.hub.publish(execution.id, event)

    def _spill(self, execution_id: str, node: str, run: NodeRun, threshold: int) -> None:
        refs: dict[str, SpillRef] = {}
        directory: Path | None = None
        for output, items in run.outputs.items():
            if not items or _obviously_small(items, threshold):
                continue
            directory = directory or self.config.executions_dir / execution_id
            try:
                ref = spill_output(directory, node, run.index, output, items, threshold)
            except (OSError, TypeError, msgspec.EncodeError) as exc:
                log.warning("could not spill output %r of node %r: %s", output, node, exc)
                continue
            if ref is not None:
                refs[output] = ref
        if refs:
            # a new dict: the executor routes the dict it returned, not the record's
            run.outputs = {
                name: [] if name in refs else items for name, items in run.outputs.items()
            }
            self._spilled.setdefault(execution_id, {})[(node, run.index)] = refs

    def execution_finished(self, execution: Execution) -> None:
        record = execution.record
        self._tasks.pop(execution.id, None)
        if execution.id in self._abandoned:
            self._abandoned.discard(execution.id)
            record.status = Status.CRASHED
            record.cancel_reason = None
            record.error = ErrorInfo(SHUTDOWN_MESSAGE, "Crashed", origin="internal")
        error = record.error
        summary = {
            "status": str(record.status),
            "finished_at": record.finished_at,
            "error_message": error.message if error else record.cancel_reason,
            "error_node": error.node if error else None,
        }
        if not self._keep(execution):
            future = self.writer.discard(execution.id)
            spilled = self._spilled.pop(execution.id, None)
            if spilled:
                remove_execution_files(self.config.executions_dir / execution.id)
        elif _item_count(record) > _BIG_RECORD_ITEMS:
            future = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(
                self._store_big(execution.id, record, summary, future)
            )
        else:
            spilled = self._spilled.get(execution.id)
            blob = _encode_record(record, spilled)
            future = self.writer.finish(execution.id, summary, blob, bool(spilled))
        self._storing[execution.id] = (record, future)
        future.add_done_callback(lambda _: self._stored(execution.id))
        if self.hub.has_subscribers(execution.id):
            self.hub.publish(
                execution.id,
                {"event": "execution_finished", "id": execution.id, **summary},
            )

    async def _store_big(
        self,
        execution_id: str,
        record: ExecutionRecord,
        summary: dict[str, Any],
        future: asyncio.Future[None],
    ) -> None:
        spilled = self._spilled.get(execution_id)
        try:
            blob = await asyncio.to_thread(_encode_record, record, spilled)
            await self.writer.finish(execution_id, summary, blob, bool(spilled))
        except Exception as exc:
            log.exception("could not store execution %s", execution_id)
            future.set_exception(exc)
        else:
            future.set_result(None)

    def _stored(self, execution_id: str) -> None:
        self._storing.pop(execution_id, None)
        self._spilled.pop(execution_id, None)

    def _keep(self, execution: Execution) -> bool:
        save = execution.workflow.settings.save
        if save is None:
            return True
        if execution.mode == Mode.MANUAL:
            return save.manual == "all"
        if execution.record.status == Status.SUCCESS:
            return save.success == "all"
        if execution.record.status in (Status.ERROR, Status.CANCELED):
            return save.error == "all"
        return True

    # -- stopping -----------------------------------------------------------------------
    @property
    def running_count(self) -> int:
        return len(self.engine.running)

    async def shutdown(self, deadline: float) -> None:
        """Start nothing new; give running executions ``deadline`` seconds, then stop them
        (recorded as ``crashed``), and wait until every record is stored."""
        self.accepting = False
        tasks = set(self._tasks.values()) | set(self._runs.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=deadline)
            if pending:
                self._abandoned.update(self.engine.running)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        storing = [future for _, future in self._storing.values()]
        if storing:
            await asyncio.gather(*storing, return_exceptions=True)
        await self.writer.flush()
