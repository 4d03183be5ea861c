"""The execute_workflow node, with a real Engine and a small resolver of named workflows."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from flowlite.errors import NotFound, WorkflowInvalid
from flowlite.executor import Engine, Execution
from flowlite.model import Workflow, workflow_from_dict
from flowlite.record import NodeRun
from flowlite.sdk import Item, NodeContext, NodeType, Outputs
from flowlite.testing import run_node, test_registry


class Stamp(NodeType):
    """Adds the running workflow's name and the size of the batch it saw to each item."""

    type = "t_stamp"

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        stamp = {"by": ctx.workflow["name"], "batch": len(items)}
        return {"main": [{"json": {**it["json"], **stamp}} for it in items]}


def sub(name: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    """A sub-workflow: `workflow_trigger` (Start) then ``nodes`` in a chain."""
    chain = [{"name": "Start", "type": "workflow_trigger"}, *nodes]
    edges = [{"from": a["name"], "to": b["name"]} for a, b in itertools.pairwise(chain)]
    return {"name": name, "nodes": chain, "connections": edges}


WORKFLOWS = {
    "stamp": sub("stamp", {"name": "Stamp", "type": "t_stamp"}),
    # keeps the items with json.keep
    "keepers": sub(
        "keepers",
        {"name": "Keep", "type": "filter", "parameters": {"condition": "{{ json.keep }}"}},
        {"name": "Kept", "type": "noop"},
    ),
    "echo": sub("echo", {"name": "Pass", "type": "noop"}),
    # fails for items with json.bad
    "picky": sub(
        "picky",
        {"name": "Bad?", "type": "if", "parameters": {"condition": "{{ json.bad }}"}},
        {"name": "Stop", "type": "stop_and_error", "parameters": {"message": "bad {{ json.n }}"}},
    ),
}
# good items leave "picky" through its false branch
WORKFLOWS["picky"]["nodes"].append({"name": "Fine", "type": "noop"})
WORKFLOWS["picky"]["connections"].append({"from": "Bad?", "output": "false", "to": "Fine"})


class Starts:
    """An execution listener that notes every execution's mode and trigger items."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, list[Any]]] = []

    def execution_started(self, execution: Execution) -> None:
        items = [it["json"] for it in execution.trigger_items or []]
        self.started.append((execution.workflow.name, execution.mode, items))

    def node_started(self, execution: Execution, node: str, run_index: int) -> None:
        pass

    def node_finished(self, execution: Execution, node: str, run: NodeRun) -> None:
        pass

    def execution_finished(self, execution: Execution) -> None:
        pass

    def subs(self) -> list[tuple[str, list[Any]]]:
        return [(name, items) for name, mode, items in self.started if mode == "subworkflow"]


def engine() -> tuple[Engine, Starts]:
    loaded = {name: workflow_from_dict(doc) for name, doc in WORKFLOWS.items()}

    async def resolver(reference: str, *, caller: Workflow | None) -> tuple[str | None, Workflow]:
        if reference not in loaded:
            raise NotFound(f"no workflow named {reference!r}")
        return f"id-{reference}", loaded[reference]

    starts = Starts()
    registry = test_registry()
    registry.add(Stamp)
    return Engine(registry, resolver=resolver, listener=starts), starts


ITEMS = [{"n": 1, "keep": True}, {"n": 2, "keep": False}, {"n": 3, "keep": True}]


async def test_once_sends_all_items_to_one_run() -> None:
    eng, starts = engine()
    result = await run_node("execute_workflow", {"workflow": "stamp"}, ITEMS, engine=eng)
    assert result.status == "success"
    assert result.json() == [{**it, "by": "stamp", "batch": 3} for it in ITEMS]
    assert starts.subs() == [("stamp", ITEMS)]


async def test_output_is_the_sub_workflows_last_node() -> None:
    eng, _ = engine()
    result = await run_node("execute_workflow", {"workflow": "keepers"}, ITEMS, engine=eng)
    assert result.json() == [{"n": 1, "keep": True}, {"n": 3, "keep": True}]


async def test_each_runs_once_per_item_in_order() -> None:
    eng, starts = engine()
    result = await run_node(
        "execute_workflow", {"workflow": "stamp", "mode": "each"}, ITEMS, engine=eng
    )
    assert result.json() == [{**it, "by": "stamp", "batch": 1} for it in ITEMS]
    assert starts.subs() == [("stamp", [item]) for item in ITEMS]


async def test_each_workflow_reference_is_per_item() -> None:
    eng, starts = engine()
    result = await run_node(
        "execute_workflow",
        {"workflow": "{{ json.wf }}", "mode": "each"},
        [{"wf": "echo"}, {"wf": "stamp"}, {"wf": "echo"}],
        engine=eng,
    )
    assert result.json() == [
        {"wf": "echo"},
        {"wf": "stamp", "by": "stamp", "batch": 1},
        {"wf": "echo"},
    ]
    assert [name for name, _ in starts.subs()] == ["echo", "stamp", "echo"]


async def test_binary_reaches_the_sub_workflow_and_comes_back() -> None:
    eng, _ = engine()
    item = {"json": {"a": 1}, "binary": {"f": {"mime_type": "text/plain", "data": "YQ=="}}}
    result = await run_node("execute_workflow", {"workflow": "echo"}, [item], engine=eng)
    assert result.outputs == {"main": [item]}


async def test_a_failed_sub_workflow_fails_the_node() -> None:
    eng, _ = engine()
    result = await run_node(
        "execute_workflow", {"workflow": "picky"}, [{"n": 1}, {"n": 2, "bad": True}], engine=eng
    )
    assert result.status == "error" and result.error is not None
    assert result.error.node == "Node"
    assert result.error.message == "sub-workflow 'picky' failed in node 'Stop': bad 2"


async def test_failed_sub_workflow_with_on_error_continue() -> None:
    eng, _ = engine()
    items = [{"n": 1}, {"n": 2, "bad": True}]
    result = await run_node(
        "execute_workflow", {"workflow": "picky"}, items, engine=eng, on_error="continue"
    )
    assert result.status == "success"
    error = "sub-workflow 'picky' failed in node 'Stop': bad 2"
    assert result.json() == [{"n": 1, "error": error}, {"n": 2, "bad": True, "error": error}]


async def test_each_mode_failures_belong_to_their_item() -> None:
    eng, _ = engine()
    items = [{"n": 1}, {"n": 2, "bad": True}, {"n": 3}]
    params = {"workflow": "picky", "mode": "each"}
    cont = await run_node("execute_workflow", params, items, engine=eng, on_error="continue")
    assert cont.json() == [
        {"n": 1},
        {"n": 2, "bad": True, "error": "sub-workflow 'picky' failed in node 'Stop': bad 2"},
        {"n": 3},
    ]
    routed = await run_node("execute_workflow", params, items, engine=eng, on_error="error_output")
    assert routed.json() == [{"n": 1}, {"n": 3}]
    assert [it["n"] for it in routed.json("error")] == [2]
    stopped = await run_node("execute_workflow", params, items, engine=eng)
    assert stopped.error is not None and stopped.error.item_index == 1


async def test_unknown_workflow() -> None:
    eng, _ = engine()
    result = await run_node("execute_workflow", {"workflow": "nope"}, [{}], engine=eng)
    assert result.error is not None and result.error.message == "no workflow named 'nope'"
    each = await run_node(
        "execute_workflow", {"workflow": "{{ json.w }}", "mode": "each"}, [{"w": ""}], engine=eng
    )
    assert each.error is not None
    assert each.error.message == "parameter 'workflow' must name a workflow, got ''"


async def test_without_a_resolver_sub_workflows_are_unavailable() -> None:
    result = await run_node("execute_workflow", {"workflow": "echo"}, [{}])
    assert result.error is not None
    assert result.error.message == "sub-workflows are not available here"


async def test_wait_false_starts_the_run_and_passes_items_on() -> None:
    eng, starts = engine()
    result = await run_node(
        "execute_workflow", {"workflow": "keepers", "wait": False}, ITEMS, engine=eng
    )
    assert result.json() == ITEMS
    for _ in range(100):  # the sub-execution runs in the background
        if starts.subs():
            break
        await asyncio.sleep(0.01)
    assert starts.subs() == [("keepers", ITEMS)]
    while eng.running:
        await asyncio.sleep(0.01)


async def test_validation() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_node("execute_workflow", {"mode": "all", "wait": "yes"})
    text = str(caught.value)
    assert "parameters.workflow: is required" in text
    assert "parameters.mode: must be one of 'once', 'each', got 'all'" in text
    assert "parameters.wait: must be true or false, got text" in text
