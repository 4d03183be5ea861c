"""The context a node run sees: the executor's implementation of :class:`~flowlite.sdk.NodeContext`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from flowlite.errors import ExpressionError, FlowliteError, InternalError, NodeError
from flowlite.expressions import EvalContext, compile_value
from flowlite.model import Node
from flowlite.sdk import MISSING, Item, WebhookResponse

if TYPE_CHECKING:
    from flowlite.executor import Execution

__all__ = ["ItemFailures", "RunContext"]


class ItemFailures:
    """Failed items of one node run, collected for on_error=continue/error_output."""

    def __init__(self) -> None:
        self.error_items: list[Item] = []


class RunContext:
    """The :class:`~flowlite.sdk.NodeContext` the executor gives a node run."""

    def __init__(
        self,
        execution: Execution,
        node: Node,
        inputs: list[list[Item] | None],
        items: list[Item],
        run_index: int,
    ) -> None:
        self._execution = execution
        self._node = node
        self._inputs = inputs
        self._items = items
        self._run_index = run_index
        self._evaluators: dict[str, Callable[[int], Any]] = {}
        self.failures = ItemFailures()
        self.logs: list[str] = []
        self.eval_context = EvalContext(
            items=items,
            node_output=execution.node_output,
            workflow=execution.workflow_info,
            execution=execution.execution_info,
            vars=execution.engine.variables,
            timezone=execution.tz,
        )

    # -- what the node sees ---------------------------------------------------------------
    @property
    def node_name(self) -> str:
        return self._node.name

    @property
    def parameters(self) -> dict[str, Any]:
        return self._node.parameters

    @property
    def inputs(self) -> list[list[Item] | None]:
        return self._inputs

    @property
    def run_index(self) -> int:
        return self._run_index

    @property
    def execution_id(self) -> str:
        return self._execution.id

    @property
    def mode(self) -> str:
        return self._execution.mode

    @property
    def workflow(self) -> dict[str, Any]:
        return self._execution.workflow_info

    @property
    def timezone(self) -> dt.tzinfo:
        return self._execution.tz

    @property
    def trigger_items(self) -> list[Item]:
        return self._items

    def evaluator(self, value: Any, label: str = "") -> Callable[[int], Any]:
        try:
            compiled = compile_value(value)
        except ExpressionError as exc:
            raise self._expression_failed(exc, label, None) from None
        if compiled.is_static:
            return lambda index: value
        context = self.eval_context

        def evaluate(index: int) -> Any:
            try:
                return compiled.evaluate(context, index)
            except ExpressionError as exc:
                raise self._expression_failed(exc, label, index) from None

        return evaluate

    def _expression_failed(self, exc: ExpressionError, label: str, index: int | None) -> NodeError:
        where = f"parameter {label!r}: " if label else ""
        return NodeError(
            f"{where}{exc.message}",
            node=self._node.name,
            item_index=index,
            error_class="ExpressionError",
        )

    def param(self, name: str, index: int = 0, default: Any = MISSING) -> Any:
        evaluate = self._evaluators.get(name)
        if evaluate is None:
            value = self._node.parameters.get(name, MISSING)
            if value is MISSING or value is None:
                if default is not MISSING:
                    return default
                param = next(
                    (
                        p
                        for p in self._execution.graph.types[self._node.name].params
                        if p.name == name
                    ),
                    None,
                )
                return param.default if param is not None else None
            evaluate = self.evaluator(value, name)
            self._evaluators[name] = evaluate
        return evaluate(index)

    def param_is_static(self, name: str) -> bool:
        static: bool = compile_value(self._node.parameters.get(name)).is_static
        return static

    def evaluate(self, value: Any, index: int = 0) -> Any:
        return self.evaluator(value)(index)

    def item_error(self, index: int, error: Exception) -> Item | None:
        on_error = self._node.on_error
        message = (
            error.message
            if isinstance(error, FlowliteError)
            else str(error) or type(error).__name__
        )
        if on_error == "stop":
            if isinstance(error, NodeError):
                if error.item_index is None:
                    error.item_index = index
                error.node = error.node or self._node.name
                raise error
            raise NodeError(
                message, node=self._node.name, item_index=index, error_class=type(error).__name__
            )
        source = self._items[index] if 0 <= index < len(self._items) else {"json": {}}
        failed: Item = {"json": {**source.get("json", {}), "error": message}}
        if "binary" in source:
            failed["binary"] = source["binary"]
        if on_error == "continue":
            return failed
        self.failures.error_items.append(failed)
        return None

    def log(self, message: str) -> None:
        self.logs.append(message)

    async def credential(self, slot: str) -> dict[str, Any]:
        reference = self._node.credentials.get(slot)
        if reference is None:
            raise NodeError(f"no credential is assigned to slot {slot!r}", node=self._node.name)
        source = self._execution.engine.credentials
        if source is None:
            raise NodeError(
                f"credential {reference!r} is not available: credentials need `flowlite serve`",
                node=self._node.name,
            )
        return await source(reference, workflow_id=self._execution.workflow_id)

    async def run_workflow(
        self, reference: str, items: list[Item], *, wait: bool = True
    ) -> list[Item]:
        return await self._execution.run_subworkflow(
            reference, items, wait=wait, node=self._node.name
        )

    def respond(self, response: WebhookResponse) -> None:
        self._execution.respond(response)

    async def run_code(
        self, code: str, mode: str, items: list[Item], *, timeout: float | None
    ) -> tuple[list[Item], list[str]]:
        runner = self._execution.engine.code_runner
        if runner is None:
            raise InternalError("the sandbox is not available in this process")
        allow_network = self._execution.workflow.settings.code_network
        return await runner(code, mode, items, timeout=timeout, allow_network=allow_network)

    def wait_until(self, when: dt.datetime) -> Awaitable[None]:
        return self._execution.engine.waiter(self._execution, when)
