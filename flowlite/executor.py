"""The asyncio DAG executor (spec section 3).

An :class:`Engine` holds what executions share (node registry, sandbox, credentials, a way to
find other workflows, a listener that records progress). :meth:`Engine.execute` runs one
workflow to a final status and returns its :class:`~flowlite.record.ExecutionRecord`; it takes
no database. The server plugs its store in as an :class:`ExecutionListener`; `flowlite run`
passes none and keeps the record in memory.

Scheduling: a node with one input runs once per arriving batch, as soon as it arrives. A node
with several inputs buffers its batches and runs once when no running or waiting node can still
reach it (every other path to it is dead). Independent branches run as concurrent tasks; the
record lists each node's runs in the order they started.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
import weakref
import zoneinfo
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowlite.context import RunContext
from flowlite.errors import (
    ExecutionCanceled,
    FlowliteError,
    NodeError,
    NodeTimeout,
    NotFound,
    UserError,
)
from flowlite.model import Node, Workflow
from flowlite.record import (
    ErrorInfo,
    ExecutionRecord,
    Mode,
    NodeRecord,
    NodeRun,
    Status,
    WorkflowRef,
    iso_now,
)
from flowlite.registry import Registry
from flowlite.sdk import Item, NodeType, Outputs, WebhookResponse
from flowlite.validation import check_workflow, output_names, resolve_output

__all__ = [
    "CodeRunner",
    "CredentialSource",
    "Engine",
    "Execution",
    "ExecutionListener",
    "Suspend",
    "WorkflowResolver",
    "last_items",
]


class ExecutionListener(Protocol):
    """Receives progress as it happens. Calls are synchronous and must not block."""

    def execution_started(self, execution: Execution) -> None: ...

    def node_started(self, execution: Execution, node: str, run_index: int) -> None: ...

    def node_finished(self, execution: Execution, node: str, run: NodeRun) -> None: ...

    def execution_finished(self, execution: Execution) -> None: ...


class WorkflowResolver(Protocol):
    """Finds a workflow by id, name, or (for `flowlite run`) file path."""

    async def __call__(
        self, reference: str, *, caller: Workflow | None
    ) -> tuple[str | None, Workflow]: ...


class CredentialSource(Protocol):
    async def __call__(self, reference: str, *, workflow_id: str | None) -> dict[str, Any]: ...


class CodeRunner(Protocol):
    """The sandbox, as the executor sees it."""

    async def __call__(
        self,
        code: str,
        mode: str,
        items: list[Item],
        *,
        timeout: float | None,
        allow_network: bool,
    ) -> tuple[list[Item], list[str]]: ...


Waiter = Callable[["Execution", dt.datetime], Awaitable[None]]


class Suspend(Exception):
    """Raised by a :data:`Waiter` to park the execution as `waiting` instead of sleeping.

    Only allowed when :meth:`Execution.can_suspend` is true. The execution then ends its run with
    status `waiting` and ``record.wait`` set; :meth:`Engine.resume` continues it later, in this
    process or another one.
    """

    def __init__(self, until: dt.datetime | None) -> None:
        super().__init__("suspended")
        self.until = until


def _uuid_hex() -> str:
    return uuid.uuid4().hex


async def _sleep_until(execution: Execution, when: dt.datetime) -> None:
    delay = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass
class Engine:
    """What executions share. Build one per process (or per `flowlite run`)."""

    registry: Registry
    resolver: WorkflowResolver | None = None
    credentials: CredentialSource | None = None
    code_runner: CodeRunner | None = None
    listener: ExecutionListener | None = None
    timezone: str = "UTC"
    variables: dict[str, Any] = field(default_factory=dict)
    #: run `settings.error_workflow` when a non-manual execution fails
    error_workflows: bool = True
    waiter: Waiter = _sleep_until
    base_url: str = ""
    #: makes execution ids (the server passes time-sortable ids; see flowlite.store.new_id)
    new_id: Callable[[], str] = field(default_factory=lambda: _uuid_hex)
    #: executions running now, by id (for cancellation)
    running: dict[str, Execution] = field(default_factory=dict)
    #: validated workflows and their graphs, by identity (workflows are not changed once loaded)
    _graphs: dict[int, tuple[weakref.ref[Workflow], _Graph]] = field(
        default_factory=dict, repr=False
    )

    def prepare(
        self,
        workflow: Workflow,
        *,
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        mode: str = Mode.CLI,
        items: list[Item] | None = None,
        start: str | None = None,
        execution_id: str | None = None,
        use_pinned: bool | None = None,
        responder: Callable[[WebhookResponse], None] | None = None,
        depth: int = 0,
        active: bool = False,
        resume: tuple[ExecutionRecord, list[Item] | None] | None = None,
    ) -> Execution:
        """Validate and set up an execution without starting it.

        ``resume=(record, items)`` continues a `waiting` execution after its wait node: the node's
        run succeeds with ``items`` (default: the items it was waiting with).
        """
        cached = self._graphs.get(id(workflow))
        if cached is not None and cached[0]() is workflow:
            graph = cached[1]
        else:
            check_workflow(workflow, self.registry)
            graph = _Graph.build(workflow, self.registry)
            key = id(workflow)
            self._graphs[key] = (
                weakref.ref(workflow, lambda _: self._graphs.pop(key, None)),
                graph,
            )
        return Execution(
            engine=self,
            graph=graph,
            workflow=workflow,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            mode=str(mode),
            trigger_items=items,
            start=start,
            execution_id=execution_id or self.new_id(),
            use_pinned=(mode == Mode.MANUAL) if use_pinned is None else use_pinned,
            responder=responder,
            depth=depth,
            active=active,
            resume=resume,
        )

    def resume(
        self,
        workflow: Workflow,
        record: ExecutionRecord,
        items: list[Item] | None = None,
        **options: Any,
    ) -> Execution:
        """Set up the continuation of a `waiting` execution (see :class:`Suspend`)."""
        if record.status != Status.WAITING or record.wait is None:
            raise UserError(f"execution {record.id} is not waiting (status {record.status})")
        return self.prepare(
            workflow,
            workflow_id=record.workflow.id,
            workflow_version=record.workflow.version,
            mode=record.mode,
            execution_id=record.id,
            resume=(record, items),
            **options,
        )

    async def execute(self, workflow: Workflow, **options: Any) -> ExecutionRecord:
        """Validate and run a workflow to a final status; return its record."""
        execution = self.prepare(workflow, **options)
        return await execution.run()

    def cancel(self, execution_id: str, reason: str = "canceled") -> bool:
        execution = self.running.get(execution_id)
        if execution is None:
            return False
        execution.cancel(reason)
        return True


def last_items(record: ExecutionRecord, order: list[tuple[str, int]]) -> list[Item]:
    """The items on the first output of the last node run to finish.

    This is what `flowlite run` prints and what a sub-workflow returns to its caller: for an
    `if` or a `filter` at the end, the `true` or `kept` items.
    """
    if not order:
        return []
    name, index = order[-1]
    run = record.nodes[name].runs[index]
    return next(iter(run.outputs.values()), []) if run.outputs else []


@dataclass
class _Graph:
    """The shape of a validated workflow, computed once per execution."""

    nodes: dict[str, Node]
    types: dict[str, NodeType]
    #: per node: (output name, target, input index), in document order
    outgoing: dict[str, list[tuple[str, str, int]]]
    input_counts: dict[str, int]
    #: per multi-input node: every node that can reach it
    ancestors: dict[str, set[str]]
    outputs: dict[str, list[str]]

    @classmethod
    def build(cls, workflow: Workflow, registry: Registry) -> _Graph:
        nodes = {n.name: n for n in workflow.nodes}
        types = {n.name: registry.get(n.type, n.version) for n in workflow.nodes}
        outputs = {name: output_names(types[name], node) for name, node in nodes.items()}
        outgoing: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        parents: dict[str, set[str]] = defaultdict(set)
        for edge in workflow.connections:
            output = resolve_output(outputs[edge.source], edge.output)
            assert output is not None  # validated
            outgoing[edge.source].append((output, edge.to, edge.input))
            parents[edge.to].add(edge.source)
        counts = {name: types[name].input_count(node.parameters) for name, node in nodes.items()}
        ancestors: dict[str, set[str]] = {}
        for name, count in counts.items():
            if count > 1:
                seen: set[str] = set()
                stack = list(parents[name])
                while stack:
                    parent = stack.pop()
                    if parent not in seen:
                        seen.add(parent)
                        stack.extend(parents[parent])
                ancestors[name] = seen
        return cls(nodes, types, outgoing, counts, ancestors, outputs)


class _Suspended(Exception):
    """A node parked the execution (see :class:`Suspend`)."""


class _Stop(Exception):
    """A node failed with on_error=stop; the execution ends in error."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


def _error_info(exc: BaseException, node: str | None) -> ErrorInfo:
    if isinstance(exc, NodeError):
        return ErrorInfo(exc.message, exc.error_class, node or exc.node, exc.item_index)
    if isinstance(exc, UserError):
        return ErrorInfo(exc.message, type(exc).__name__, node)
    if isinstance(exc, FlowliteError):
        return ErrorInfo(exc.message, type(exc).__name__, node, origin="internal")
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ErrorInfo(message, type(exc).__name__, node, origin="internal")


class Execution:
    """One run of a workflow. Create through :meth:`Engine.prepare`; then ``await run()``."""

    def __init__(
        self,
        *,
        engine: Engine,
        graph: _Graph,
        workflow: Workflow,
        workflow_id: str | None,
        workflow_version: int | None,
        mode: str,
        trigger_items: list[Item] | None,
        start: str | None,
        execution_id: str,
        use_pinned: bool,
        responder: Callable[[WebhookResponse], None] | None,
        depth: int,
        active: bool,
        resume: tuple[ExecutionRecord, list[Item] | None] | None = None,
    ) -> None:
        self.engine = engine
        self.workflow = workflow
        self.workflow_id = workflow_id
        self.id = execution_id
        self.mode = mode
        self.depth = depth
        self.graph = graph
        self.start_nodes = self._start_nodes(start)
        self.trigger_items = trigger_items
        self.use_pinned = use_pinned
        self.responder = responder
        zone = workflow.settings.timezone or engine.timezone
        self.tz: dt.tzinfo = dt.UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
        self.workflow_info = {"id": workflow_id, "name": workflow.name, "active": active}
        resume_url = (
            f"{engine.base_url}/webhook-waiting/{execution_id}" if engine.base_url else None
        )
        self.execution_info = {"id": execution_id, "mode": mode, "resume_url": resume_url}
        self.record = ExecutionRecord(
            id=execution_id,
            workflow=WorkflowRef(workflow_id, workflow.name, workflow_version),
            mode=mode,
            status=Status.RUNNING,
            started_at=iso_now(),
        )
        self._resume = resume
        if resume is not None:
            self.record = resume[0]
            self.record.status = Status.RUNNING
            self.record.finished_at = None
        #: (node, run index) in the order runs finished
        self.finish_order: list[tuple[str, int]] = []
        self._latest: dict[str, list[Item]] = {}
        self._pending: Callable[[], int] = lambda: 0
        self._task: asyncio.Task[Any] | None = None
        self._cancel_reason: str | None = None
        self._responded = False

    # -- set-up ------------------------------------------------------------------------------
    def _start_nodes(self, start: str | None) -> list[str]:
        graph = self.graph
        if start is not None:
            if start not in graph.nodes:
                raise NotFound(f"no node named {start!r} to start from")
            return [start]
        enabled = [n for n in graph.nodes.values() if not n.disabled]
        triggers = [n.name for n in enabled if graph.types[n.name].is_trigger]
        if len(triggers) == 1:
            return triggers
        if triggers:
            manual = [t for t in triggers if graph.nodes[t].type == "manual_trigger"]
            if manual:
                return manual
            listed = ", ".join(repr(t) for t in triggers)
            raise UserError(
                f"the workflow has several triggers ({listed}); choose one to start from"
            )
        targets = {target for edges in graph.outgoing.values() for _, target, _ in edges}
        roots = [n.name for n in enabled if n.name not in targets]
        if not roots:
            raise UserError("the workflow has no node to start from")
        return roots

    # -- what expressions see -----------------------------------------------------------------
    def node_output(self, name: str) -> list[Item] | None:
        return self._latest.get(name)

    # -- running -----------------------------------------------------------------------------
    def can_suspend(self) -> bool:
        """True when the one node running now is all that is left to do (no parallel branch)."""
        return self._pending() == 0

    def cancel(self, reason: str = "canceled") -> None:
        """Cancel the execution: running nodes are cancelled, the status becomes `canceled`."""
        self._cancel_reason = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self) -> ExecutionRecord:
        """Run to a final status. Never raises for a failing workflow: the record says it."""
        self._task = asyncio.current_task()
        engine = self.engine
        engine.running[self.id] = self
        listener = engine.listener
        if listener is not None:
            listener.execution_started(self)
        record = self.record
        try:
            timeout = self.workflow.settings.timeout
            try:
                async with asyncio.timeout(timeout):
                    await self._run_graph()
            except TimeoutError:
                self._cancel_reason = f"the workflow timed out after {timeout:g} s"
                raise ExecutionCanceled(self._cancel_reason) from None
            record.status = Status.SUCCESS
        except _Suspended:
            record.status = Status.WAITING
        except _Stop as stop:
            record.status = Status.ERROR
            record.error = stop.info
        except ExecutionCanceled as exc:
            record.status = Status.CANCELED
            record.cancel_reason = exc.message
        except asyncio.CancelledError:
            record.status = Status.CANCELED
            record.cancel_reason = self._cancel_reason or "canceled"
            if self._cancel_reason is None:
                # cancelled from outside (shutdown): finish recording, then let it propagate
                self._finish(listener)
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception as exc:
            record.status = Status.ERROR
            record.error = _error_info(exc, None)
        self._finish(listener)
        if record.status == Status.ERROR and self.mode != Mode.MANUAL:
            await self._run_error_workflow()
        return record

    def _finish(self, listener: ExecutionListener | None) -> None:
        self.record.finished_at = iso_now()
        self.engine.running.pop(self.id, None)
        if listener is not None:
            listener.execution_finished(self)

    async def _run_graph(self) -> None:
        graph = self.graph
        active: dict[asyncio.Task[Outputs | None], tuple[str, int]] = {}
        sequence: dict[asyncio.Task[Outputs | None], int] = {}
        ready: list[tuple[Node, list[list[Item] | None], int]] = []
        waiting: dict[str, list[list[Item] | None]] = {}
        order = list(graph.nodes)

        def deliver(target: str, input_index: int, items: list[Item]) -> None:
            count = graph.input_counts[target]
            if count <= 1:
                launch(target, [items])
                return
            buffers = waiting.setdefault(target, [None] * count)
            current = buffers[input_index]
            buffers[input_index] = items if current is None else current + items

        def launch(name: str, inputs: list[list[Item] | None]) -> None:
            node = graph.nodes[name]
            if node.disabled:
                passed = inputs[0] if inputs else None
                if passed:
                    route(name, {graph.outputs[name][0]: passed})
                return
            runs = self.record.nodes.setdefault(name, NodeRecord(runs=[])).runs
            run_index = len(runs)
            runs.append(NodeRun(index=run_index, status=Status.RUNNING, started_at=iso_now()))
            ready.append((node, inputs, run_index))

        def route(name: str, outputs: Outputs) -> None:
            first = graph.outputs[name][0] if graph.outputs[name] else "main"
            main = outputs.get(first)
            if main:
                self._latest[name] = main
            for output, target, input_index in graph.outgoing.get(name, ()):
                items = outputs.get(output)
                if items:
                    deliver(target, input_index, items)

        self._pending = lambda: len(active) + len(ready) + len(waiting) - (1 if active else 0)
        if self._resume is not None:
            self._resume_after_wait(route)
        for name in self.start_nodes if self._resume is None else ():
            items = self.trigger_items
            if graph.types[name].is_trigger:
                launch(name, [])
            else:
                launch(name, [items if items is not None else [{"json": {}}]])
        try:
            while ready or active or waiting:
                if len(ready) == 1 and not active:
                    # the common linear case: run inline, saving a task and a wait per node
                    node, inputs, run_index = ready.pop()
                    outputs = await self._run_node(node, inputs, run_index)
                    if outputs:
                        route(node.name, outputs)
                elif ready:
                    for node, inputs, run_index in ready:
                        task = asyncio.create_task(self._run_node(node, inputs, run_index))
                        active[task] = (node.name, run_index)
                        sequence[task] = len(sequence)
                    ready.clear()
                elif active:
                    done, _ = await asyncio.wait(active, return_when=asyncio.FIRST_COMPLETED)
                    for task in sorted(done, key=sequence.__getitem__):
                        name, _index = active.pop(task)
                        outputs = task.result()  # raises _Stop
                        if outputs:
                            route(name, outputs)
                if waiting and not ready:
                    busy = {name for name, _ in active.values()}
                    self._launch_ready(waiting, busy, order, launch)
        except BaseException:
            for task in active:
                task.cancel()
            if active:
                await asyncio.gather(*active, return_exceptions=True)
            raise

    def _resume_after_wait(self, route: Callable[[str, Outputs], None]) -> None:
        record = self.record
        wait = record.wait
        assert self._resume is not None and wait is not None
        for name, node_record in record.nodes.items():
            for run in node_record.runs:
                first = next(iter(run.outputs.values()), None) if run.outputs else None
                if run.status == Status.SUCCESS and first:
                    self._latest[name] = first
        name, run_index = wait["node"], wait["run_index"]
        items = self._resume[1] if self._resume[1] is not None else wait["items"]
        run = record.nodes[name].runs[run_index]
        outputs = {self.graph.outputs[name][0]: items}
        run.status, run.outputs = Status.SUCCESS, outputs
        record.wait = None
        self.finish_order.append((name, run_index))
        if self.engine.listener is not None:
            self.engine.listener.node_finished(self, name, run)
        route(name, outputs)

    def _launch_ready(
        self,
        waiting: dict[str, list[list[Item] | None]],
        busy: set[str],
        order: list[str],
        launch: Callable[[str, list[list[Item] | None]], None],
    ) -> None:
        """Start each waiting multi-input node that nothing running or waiting can still reach."""
        busy = busy | set(waiting)
        for name in order:
            if name not in waiting:
                continue
            if busy & self.graph.ancestors.get(name, set()):
                continue
            inputs = waiting.pop(name)
            busy.discard(name)
            node_type = self.graph.types[name]
            needs_all = node_type.needs_all_inputs(self.graph.nodes[name].parameters)
            if needs_all and any(batch is None for batch in inputs):
                continue  # an input is dead: the node does not run
            launch(name, inputs)

    async def _run_node(
        self, node: Node, inputs: list[list[Item] | None], run_index: int
    ) -> Outputs | None:
        graph = self.graph
        name = node.name
        node_type = graph.types[name]
        listener = self.engine.listener
        run = self.record.nodes[name].runs[run_index]
        if listener is not None:
            listener.node_started(self, name, run_index)
        items = inputs[0] if inputs and inputs[0] is not None else []
        if node_type.is_trigger:
            items = self.trigger_items if self.trigger_items is not None else []
        if node.execute_once and items:
            items = items[:1]
            inputs = [items, *inputs[1:]]
        run.input_items = sum(len(batch) for batch in inputs if batch)
        started = time.perf_counter()
        contexts: list[RunContext] = []  # one per try; the last one's logs are kept
        try:
            pinned = self.workflow.pinned.get(name) if self.use_pinned else None
            if pinned is not None:
                run.pinned = True
                outputs: Outputs = {graph.outputs[name][0]: [_as_item(i) for i in pinned]}
            else:
                outputs = await self._attempt(node, node_type, inputs, items, run_index, contexts)
            if node.always_output and not any(outputs.values()):
                outputs = {graph.outputs[name][0]: [{"json": {}}]}
            run.status = Status.SUCCESS
            run.outputs = outputs
            return outputs
        except asyncio.CancelledError:
            run.status = Status.CANCELED
            raise
        except Suspend as suspend:
            run.status = Status.WAITING
            until = suspend.until.astimezone(dt.UTC).isoformat() if suspend.until else None
            self.record.wait = {
                "node": name,
                "run_index": run_index,
                "until": until,
                "items": items,
            }
            raise _Suspended from None
        except Exception as exc:  # NodeError, or a bug in a node or in flowlite (origin internal)
            info = _error_info(exc, name)
            run.status = Status.ERROR
            run.error = info
            if node.on_error == "stop":
                raise _Stop(info) from None
            return self._divert(node, items, info, run)
        finally:
            run.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            if contexts and contexts[-1].logs:
                run.logs = contexts[-1].logs
            self.finish_order.append((name, run_index))
            if listener is not None:
                listener.node_finished(self, name, run)

    def _divert(self, node: Node, items: list[Item], info: ErrorInfo, run: NodeRun) -> Outputs:
        """on_error continue / error_output for a whole failed run: every input item moves on."""
        failed = [{"json": {**it.get("json", {}), "error": info.message}} for it in items]
        if node.on_error == "continue":
            outputs = {self.graph.outputs[node.name][0]: failed}
        else:
            outputs = {"error": failed}
        run.outputs = outputs
        return outputs

    async def _attempt(
        self,
        node: Node,
        node_type: NodeType,
        inputs: list[list[Item] | None],
        items: list[Item],
        run_index: int,
        contexts: list[RunContext],
    ) -> Outputs:
        retry = node.retry
        tries = retry.max_tries if retry is not None else 1
        attempt = 0
        while True:
            attempt += 1
            context = RunContext(self, node, inputs, items, run_index)
            contexts.append(context)
            try:
                if node.timeout is not None:
                    try:
                        async with asyncio.timeout(node.timeout):
                            outputs = await node_type.run(context, items)
                    except TimeoutError:
                        raise NodeTimeout(
                            f"the node timed out after {node.timeout:g} s", node=node.name
                        ) from None
                else:
                    outputs = await node_type.run(context, items)
            except Exception as exc:
                if attempt >= tries:
                    if isinstance(exc, UserError) and not isinstance(exc, NodeError):
                        raise NodeError(
                            exc.message, node=node.name, error_class=type(exc).__name__
                        ) from exc
                    raise
                assert retry is not None
                await asyncio.sleep(retry.wait * retry.backoff ** (attempt - 1))
                continue
            if context.failures.error_items:
                outputs = {**outputs, "error": context.failures.error_items}
            return outputs

    # -- sub-workflows, webhooks, error workflows ---------------------------------------------
    async def run_subworkflow(
        self, reference: str, items: list[Item], *, wait: bool, node: str
    ) -> list[Item]:
        engine = self.engine
        if engine.resolver is None:
            raise NodeError("sub-workflows are not available here", node=node)
        if self.depth >= 20:
            raise NodeError("sub-workflows are nested more than 20 deep (a loop?)", node=node)
        workflow_id, workflow = await engine.resolver(reference, caller=self.workflow)
        child = engine.prepare(
            workflow,
            workflow_id=workflow_id,
            mode=Mode.SUBWORKFLOW,
            items=items,
            depth=self.depth + 1,
        )
        if not wait:
            asyncio.get_running_loop().create_task(child.run())
            return items
        record = await child.run()
        if record.status != Status.SUCCESS:
            reason = record.error.message if record.error else record.cancel_reason or record.status
            where = f" in node {record.error.node!r}" if record.error and record.error.node else ""
            raise NodeError(f"sub-workflow {workflow.name!r} failed{where}: {reason}", node=node)
        return last_items(record, child.finish_order)

    def respond(self, response: WebhookResponse) -> None:
        if self._responded:
            return
        self._responded = True
        content_type = response.content_type or ""
        body: Any = response.body.decode("utf-8", "replace")
        if "json" in content_type:
            with contextlib.suppress(ValueError):
                body = json.loads(body or "null")
        self.record.response = {
            "status": response.status,
            "headers": response.headers,
            "body": body,
        }
        if self.responder is not None:
            self.responder(response)

    @property
    def responded(self) -> bool:
        return self._responded

    async def _run_error_workflow(self) -> None:
        engine = self.engine
        reference = self.workflow.settings.error_workflow
        if not engine.error_workflows or reference is None or engine.resolver is None:
            return
        if self.mode == Mode.ERROR:
            return  # an error workflow that fails does not start another: no loops
        error = self.record.error
        item = {
            "execution": {
                "id": self.id,
                "url": f"{engine.base_url}/executions/{self.id}" if engine.base_url else None,
                "error": {
                    "message": error.message,
                    "node": error.node,
                    "error_class": error.error_class,
                }
                if error
                else None,
                "last_node": self.finish_order[-1][0] if self.finish_order else None,
                "mode": self.mode,
            },
            "workflow": {"id": self.workflow_id, "name": self.workflow.name},
        }
        try:
            workflow_id, workflow = await engine.resolver(reference, caller=self.workflow)
            triggers = [n.name for n in workflow.nodes if n.type == "error_trigger"]
            await engine.execute(
                workflow,
                workflow_id=workflow_id,
                mode=Mode.ERROR,
                items=[{"json": item}],
                start=triggers[0] if triggers else None,
            )
        except FlowliteError as exc:
            import logging

            logging.getLogger(__name__).warning(
                "error workflow %r could not run: %s", reference, exc
            )


def _as_item(value: dict[str, Any]) -> Item:
    return value if isinstance(value.get("json"), dict) else {"json": value}
