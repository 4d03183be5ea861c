"""The `merge` node: combines the items of 2 to 10 inputs into one output.

Modes:

- ``append``: every item of input 0, then of input 1, and so on.
- ``by_fields``: a join of input 0 (left) with input 1 (right) on ``fields``; with more inputs
  the result is joined with input 2, and so on. ``join`` is ``inner``, ``left``, ``right`` or
  ``outer``. A joined item is the left item's json updated with the right item's json (and
  the same for binary). Output keeps left order (each left item followed by its matches, in
  right order), then the unmatched right items in right order. A missing or null key field
  never matches; key values match by JSON equality (``1`` matches ``1.0``, not ``"1"``).
- ``by_position``: item *k* of every input merged into one item; with ``include_unpaired``
  the items past the shortest input are output too (merged from the inputs that have one).
- ``cross``: every combination of one item per input (input 0 varies slowest).
- ``choose``: the items of input ``input``, unchanged.

A dead input (no items arrived: its branch ended) counts as an empty one. ``append``,
``by_fields`` and ``by_position`` run with whatever arrived. ``choose`` and ``cross`` need every
input: with a dead input the node does not run at all (see ``needs_all_inputs``).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from flowlite.errors import NodeError
from flowlite.sdk import MISSING, Item, NodeContext, NodeType, Outputs, Param, get_field

__all__ = ["MAX_CROSS_ITEMS", "NODES", "Merge"]

#: the most items `cross` may produce (a guard against a combinatorial explosion)
MAX_CROSS_ITEMS = 1_000_000

MODES = ("append", "by_fields", "by_position", "cross", "choose")


class Merge(NodeType):
    type = "merge"
    display_name = "Merge"
    category = "flow"
    description = "Combines the items of several inputs: append, join by fields, by position, ..."
    inputs = 2
    params = (
        Param(
            "mode",
            "options",
            "How the inputs combine",
            options=MODES,
            default="append",
            expressions=False,
        ),
        Param(
            "inputs",
            "integer",
            "How many inputs the node has",
            default=2,
            minimum=2,
            maximum=10,
            expressions=False,
        ),
        Param(
            "fields",
            "list",
            "by_fields: the key fields, as {left, right} pairs or one name used on both sides",
            fields=(
                Param("left", "string", "Field of the left item", required=True),
                Param("right", "string", "Field of the right item", required=True),
            ),
            alternatives=("list", "string"),
            expressions=False,
        ),
        Param(
            "join",
            "options",
            "by_fields: which unmatched items to keep",
            options=("inner", "left", "right", "outer"),
            default="inner",
            expressions=False,
        ),
        Param(
            "include_unpaired",
            "boolean",
            "by_position: also output the items past the end of the shortest input",
            default=False,
            expressions=False,
        ),
        Param(
            "input",
            "integer",
            "choose: the input whose items pass",
            default=0,
            minimum=0,
            maximum=9,
            expressions=False,
        ),
    )

    def input_count(self, parameters: dict[str, Any]) -> int:
        count = parameters.get("inputs")
        if isinstance(count, int) and not isinstance(count, bool) and 2 <= count <= 10:
            return count
        return 2

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        mode = parameters.get("mode", "append")
        problems: list[tuple[str, str]] = []
        fields = parameters.get("fields")
        if mode == "by_fields" and (fields is None or fields == [] or fields == ""):
            problems.append(("fields", "mode 'by_fields' needs `fields`"))
        chosen, count = parameters.get("input"), self.input_count(parameters)
        if isinstance(chosen, int) and chosen >= count:
            problems.append(("input", f"there is no input {chosen} (inputs: 0..{count - 1})"))
        return problems

    def needs_all_inputs(self, parameters: dict[str, Any]) -> bool:
        return parameters.get("mode") in ("choose", "cross")

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        parameters = ctx.parameters
        mode = parameters.get("mode") or "append"
        inputs = ctx.inputs
        batches = [batch or [] for batch in inputs]
        if mode == "append":
            return {"main": [it for batch in batches for it in batch]}
        if mode == "choose":
            if any(batch is None for batch in inputs):
                return {"main": []}
            return {"main": list(batches[parameters.get("input") or 0])}
        if mode == "cross":
            return {"main": _cross(batches)}
        if mode == "by_position":
            return {"main": _by_position(batches, bool(parameters.get("include_unpaired")))}
        pairs = _key_pairs(parameters.get("fields"))
        join = parameters.get("join") or "inner"
        merged = batches[0]
        for right in batches[1:]:
            merged = _join(merged, right, pairs, join)
        return {"main": merged}


def _merged(items: tuple[Item, ...] | list[Item]) -> Item:
    """One item from several: later items' json (and binary) update earlier ones'."""
    if len(items) == 1:
        return items[0]
    data: dict[str, Any] = {}
    binary: dict[str, Any] = {}
    for it in items:
        data.update(it["json"])
        if it.get("binary"):
            binary.update(it["binary"])
    return {"json": data, "binary": binary} if binary else {"json": data}


def _cross(batches: list[list[Item]]) -> list[Item]:
    total = 1
    for batch in batches:
        total *= len(batch)
    if total > MAX_CROSS_ITEMS:
        sizes = " x ".join(str(len(batch)) for batch in batches)
        raise NodeError(
            f"mode 'cross' would make {total} items ({sizes}); the limit is {MAX_CROSS_ITEMS}"
        )
    return [_merged(combination) for combination in itertools.product(*batches)]


def _by_position(batches: list[list[Item]], include_unpaired: bool) -> list[Item]:
    lengths = [len(batch) for batch in batches]
    count = max(lengths) if include_unpaired else min(lengths)
    return [_merged([batch[k] for batch in batches if k < len(batch)]) for k in range(count)]


def _key_pairs(fields: Any) -> list[tuple[str, str]]:
    if isinstance(fields, str):
        return [(fields, fields)]
    return [(pair["left"], pair["right"]) for pair in fields]


def _key(item: Item, names: list[str]) -> Any:
    """The join key of an item, or ``None`` when a key field is missing or null."""
    data = item["json"]
    values = []
    for name in names:
        value = get_field(data, name)
        if value is MISSING or value is None:
            return None
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True)
        values.append(value)
    return tuple(values)


def _join(
    left: list[Item], right: list[Item], pairs: list[tuple[str, str]], join: str
) -> list[Item]:
    left_names = [a for a, _ in pairs]
    right_names = [b for _, b in pairs]
    index: dict[Any, list[int]] = {}
    for position, it in enumerate(right):
        key = _key(it, right_names)
        if key is not None:
            index.setdefault(key, []).append(position)
    keep_left = join in ("left", "outer")
    matched: set[int] = set()
    out: list[Item] = []
    for it in left:
        key = _key(it, left_names)
        positions = index.get(key) if key is not None else None
        if positions:
            matched.update(positions)
            out.extend(_merged((it, right[p])) for p in positions)
        elif keep_left:
            out.append(it)
    if join in ("right", "outer"):
        out.extend(it for position, it in enumerate(right) if position not in matched)
    return out


NODES: list[type[NodeType]] = [Merge]
