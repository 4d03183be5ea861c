"""The `code` node: the user's Python, run in the sandbox pool (never in the server process).

The code is the body of a function. In ``all_items`` mode it sees ``items`` (a list of the input
items' json, as plain dicts) and returns a list (or one dict); in ``each_item`` mode it sees
``item`` (one json dict) and ``index`` and returns a dict, a list of dicts, or ``None`` to drop
the item. Returned dicts without a ``json`` key are wrapped. What the code prints goes to the
run's logs in the execution record; a failure's traceback is trimmed to the user's own lines.
"""

from __future__ import annotations

from flowlite.errors import FlowliteError, NodeError
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

__all__ = ["NODES", "Code"]


class Code(NodeType):
    type = "code"
    display_name = "Code"
    category = "data"
    description = "Runs Python code in the sandbox on the input items."
    params = (
        Param(
            "language",
            "options",
            "The code's language",
            options=("python",),
            default="python",
            expressions=False,
        ),
        Param(
            "mode",
            "options",
            "all_items: the code sees `items` and returns a list; each_item: it sees `item` and `index` and returns an item, a list or None",
            options=("all_items", "each_item"),
            default="all_items",
            expressions=False,
        ),
        Param(
            "code",
            "code",
            "The body of a function; `return` its result",
            required=True,
            expressions=False,
        ),
        Param(
            "timeout",
            "number",
            "Seconds the code may run (at most the sandbox's limit)",
            minimum=0.001,
            expressions=False,
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        mode = ctx.parameters.get("mode") or "all_items"
        code = ctx.parameters["code"]
        timeout = ctx.parameters.get("timeout")
        try:
            produced, logs = await ctx.run_code(code, mode, items, timeout=timeout)
        except FlowliteError as exc:
            details = getattr(exc, "details", None)
            if details:
                ctx.log(str(details))
            raise NodeError(
                exc.message, node=ctx.node_name, error_class=type(exc).__name__
            ) from None
        for line in logs:
            ctx.log(line)
        return {"main": produced}


NODES: list[type[NodeType]] = [Code]
