"""The `execute_workflow` node: runs another workflow as a sub-execution.

The sub-workflow starts at its trigger (usually `workflow_trigger`) with the items it is given,
and this node outputs the items of the sub-workflow's last node to finish. In ``once`` mode all
input items go to one sub-execution; in ``each`` mode every item gets its own, one after the
other in item order (so the output order is deterministic), and the outputs are concatenated.

A failed sub-workflow fails this node with a message naming the sub-workflow and its failed
node. In ``each`` mode the failure belongs to the item (``on_error`` continue / error_output
divert just that item). With ``wait: false`` the sub-execution is started in the background
and the input items pass through.
"""

from __future__ import annotations

from flowlite.errors import FlowliteError, NodeError
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

__all__ = ["NODES", "ExecuteWorkflow"]


class ExecuteWorkflow(NodeType):
    type = "execute_workflow"
    display_name = "Execute workflow"
    category = "flow"
    description = "Runs another workflow with the input items and outputs what it returns."
    params = (
        Param(
            "workflow",
            "string",
            "The workflow to run: its id or name (or a file path with `flowlite run`)",
            required=True,
        ),
        Param(
            "mode",
            "options",
            "once: all items to one run; each: one run per item",
            options=("once", "each"),
            default="once",
            expressions=False,
        ),
        Param(
            "wait",
            "boolean",
            "Wait for the sub-workflow and output its items (false: start it, pass items on)",
            default=True,
            expressions=False,
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        wait = ctx.parameters.get("wait") is not False
        if ctx.parameters.get("mode") != "each":
            reference = _reference(ctx.param("workflow", 0))
            return {"main": await ctx.run_workflow(reference, items, wait=wait)}
        static = ctx.param_is_static("workflow")
        fixed = _reference(ctx.param("workflow", 0)) if static and items else ""
        out: list[Item] = []
        for index, item in enumerate(items):
            try:
                reference = fixed if static else _reference(ctx.param("workflow", index))
                out.extend(await ctx.run_workflow(reference, [item], wait=wait))
            except FlowliteError as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
        return {"main": out}


def _reference(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise NodeError(f"parameter 'workflow' must name a workflow, got {value!r}")
    return value.strip()


NODES: list[type[NodeType]] = [ExecuteWorkflow]
