"""Retrying a finished execution: from the start, or from the node that failed.

Both run the workflow version the execution ran (not the current one), in mode ``retry``, and
remember the original in ``retry_of``. From the start, the trigger gets the items the execution
started with. From the failed node, that node gets the items its parents output in the stored
record (spilled outputs read back from their files) and runs once with all of them; the nodes
that ran before keep their outputs for expressions such as ``node("X").json``. A node with
several inputs (merge) can only be retried from the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from flowlite.errors import NotFound, UserError
from flowlite.execution_store import load_inputs, load_record
from flowlite.executor import Execution
from flowlite.model import Workflow
from flowlite.record import TERMINAL, Mode
from flowlite.sdk import Item
from flowlite.spill import SpillRef, read_items
from flowlite.state import ServerState
from flowlite.store import Conflict, get_version
from flowlite.validation import output_names, resolve_output

__all__ = ["retry_execution"]


def _outputs(run: dict[str, Any], output: str, directory: Path) -> list[Item]:
    spilled = run.get("spilled", {}).get(output)
    if spilled is not None:
        ref = SpillRef(**spilled)
        return read_items(directory, ref, 0, ref.items)
    items: list[Item] = run.get("outputs", {}).get(output, [])
    return items


def _failed_node_inputs(
    state: ServerState, workflow: Workflow, record: dict[str, Any], node_name: str
) -> tuple[list[Item], dict[str, list[Item]]]:
    """The failed node's input items, and the first-output items of every node that ran."""
    registry = state.registry
    node = workflow.node(node_name)
    if node is None:
        raise UserError(f"the failed node {node_name!r} is no longer in the workflow")
    if registry.get(node.type, node.version).input_count(node.parameters) > 1:
        raise UserError(
            f"node {node_name!r} has several inputs: retry the execution from the start"
        )
    directory = state.config.executions_dir / str(record["id"])
    nodes: dict[str, Any] = record.get("nodes", {})
    items: list[Item] = []
    for edge in workflow.connections:
        if edge.to != node_name or edge.input != 0:
            continue
        source = workflow.node(edge.source)
        if source is None or edge.source not in nodes:
            continue
        names = output_names(registry.get(source.type, source.version), source)
        output = resolve_output(names, edge.output)
        for run in nodes[edge.source]["runs"]:
            if output is not None:
                items.extend(_outputs(run, output, directory))
    seed: dict[str, list[Item]] = {}
    for name, entry in nodes.items():
        source = workflow.node(name)
        if name == node_name or source is None or not entry.get("runs"):
            continue
        first = output_names(registry.get(source.type, source.version), source)[:1]
        run = entry["runs"][-1]
        if first and not run.get("spilled"):
            outputs = run.get("outputs", {}).get(first[0])
            if outputs:
                seed[name] = outputs
    return items, seed


async def retry_execution(
    state: ServerState, execution_id: str, start_from: Literal["start", "failed_node"]
) -> Execution:
    """Start the retry of a finished execution; returns the new execution."""
    live = state.runner.live(execution_id)
    if live is not None:
        raise Conflict(f"execution {execution_id!r} has not finished: cancel it or wait")
    summary, record = await load_record(state.db, execution_id)
    if summary.status not in TERMINAL:
        raise Conflict(f"execution {execution_id!r} has not finished ({summary.status})")
    if summary.workflow_id is None or summary.workflow_version is None:
        raise UserError(f"execution {execution_id!r} did not run a stored workflow")
    try:
        version = await get_version(state.db, summary.workflow_id, summary.workflow_version)
    except NotFound:
        raise NotFound(
            f"the workflow execution {execution_id!r} ran (id {summary.workflow_id!r}, "
            f"version {summary.workflow_version}) no longer exists"
        ) from None
    runner = state.runner
    workflow = runner.workflow(version.workflow_id, version.number, version.document)
    inputs = await load_inputs(state.db, execution_id)
    if start_from == "start":
        return runner.start(
            version.workflow_id,
            version.number,
            version.document,
            mode=Mode.RETRY,
            items=inputs.get("items"),
            start=inputs.get("start"),
            retry_of=execution_id,
        )
    error = record.get("error") or {}
    node_name = error.get("node")
    if summary.status not in ("error", "crashed", "canceled") or not node_name:
        raise UserError(
            f"execution {execution_id!r} did not fail in a node: retry it from the start"
        )
    start_node = inputs.get("start")
    trigger = workflow.node(node_name)
    if trigger is not None and state.registry.get(trigger.type, trigger.version).is_trigger:
        items: list[Item] | None = inputs.get("items")
        seed: dict[str, list[Item]] = {}
    elif node_name == start_node:
        items, seed = inputs.get("items"), {}
    else:
        items, seed = _failed_node_inputs(state, workflow, record, node_name)
    return runner.start(
        version.workflow_id,
        version.number,
        version.document,
        mode=Mode.RETRY,
        items=items,
        start=node_name,
        retry_of=execution_id,
        seed=seed,
    )
