"""Run one node or one workflow through the real executor: for tests and for plugin authors.

``await run_node("set", {"fields": {"a": 1}}, [{"x": 1}])`` builds a small workflow around the
node (a source node per input feeding the given items), runs it with a real :class:`Engine`,
and returns what the node did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowlite.executor import Engine, last_items
from flowlite.model import Workflow, workflow_from_dict
from flowlite.record import ErrorInfo, ExecutionRecord, Mode, NodeRun
from flowlite.registry import Registry
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param, as_items

__all__ = ["NodeResult", "TestSource", "node_problems", "run_node", "run_workflow", "test_registry"]


class TestSource(NodeType):
    """Emits the items in its ``items`` parameter, whatever it receives."""

    __test__ = False  # not a pytest class
    type = "test_source"
    description = "Emits fixed items (tests only)."
    params = (Param("items", "json", expressions=False),)

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {"main": as_items(ctx.parameters.get("items") or [])}


def test_registry() -> Registry:
    registry = Registry.default()
    registry.add(TestSource)
    return registry


test_registry.__test__ = False  # type: ignore[attr-defined]


@dataclass
class NodeResult:
    record: ExecutionRecord
    run: NodeRun | None

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def outputs(self) -> dict[str, list[Item]]:
        return self.run.outputs if self.run is not None else {}

    def json(self, output: str | None = None) -> list[Any]:
        """The json of the items on ``output`` (default: the first output)."""
        outputs = self.outputs
        if output is None:
            output = next(iter(outputs), "main")
        return [it["json"] for it in outputs.get(output, [])]

    @property
    def error(self) -> ErrorInfo | None:
        if self.run is not None and self.run.error is not None:
            return self.run.error
        return self.record.error


async def run_node(
    type_name: str,
    parameters: dict[str, Any] | None = None,
    items: Any = None,
    *,
    inputs: list[Any] | None = None,
    engine: Engine | None = None,
    **node_fields: Any,
) -> NodeResult:
    """Run node ``type_name`` once on ``items`` (or on several ``inputs``; ``None`` = dead input)."""
    batches = inputs if inputs is not None else [items if items is not None else [{}]]
    nodes: list[dict[str, Any]] = []
    connections: list[dict[str, Any]] = []
    for index, batch in enumerate(batches):
        if batch is None:
            continue
        nodes.append(
            {"name": f"Input {index}", "type": "test_source", "parameters": {"items": batch}}
        )
        connections.append({"from": f"Input {index}", "to": "Node", "input": index})
    nodes.append({"name": "Node", "type": type_name, "parameters": parameters or {}, **node_fields})
    workflow = workflow_from_dict(
        {"name": f"test {type_name}", "nodes": nodes, "connections": connections}
    )
    engine = engine or Engine(test_registry())
    if inputs is None and batches == [[]]:
        # an empty batch would schedule nothing: start at the node itself with no items
        alone = workflow_from_dict({"name": f"test {type_name}", "nodes": nodes[-1:]})
        record = await engine.execute(alone, mode=Mode.CLI, items=[], start="Node")
    else:
        record = await engine.execute(workflow, mode=Mode.CLI)
    runs = record.nodes.get("Node")
    return NodeResult(record, runs.runs[0] if runs and runs.runs else None)


def node_problems(type_name: str, parameters: dict[str, Any], **node_fields: Any) -> list[str]:
    """The validation problems of one node ``N`` of ``type_name``, as text."""
    from flowlite.validation import problems_of

    node = {"name": "N", "type": type_name, "parameters": parameters, **node_fields}
    workflow = workflow_from_dict({"name": "w", "nodes": [node]})
    return [str(p) for p in problems_of(workflow, test_registry())]


async def run_workflow(
    document: dict[str, Any] | Workflow,
    items: Any = None,
    *,
    engine: Engine | None = None,
    **options: Any,
) -> tuple[ExecutionRecord, list[Item]]:
    """Run a workflow document; returns the record and the last finished node's items."""
    workflow = document if isinstance(document, Workflow) else workflow_from_dict(document)
    engine = engine or Engine(test_registry())
    execution = engine.prepare(
        workflow,
        items=as_items(items) if items is not None else None,
        **{"mode": Mode.CLI, **options},
    )
    record = await execution.run()
    return record, last_items(record, execution.finish_order)
