"""List data nodes: `sort`, `limit` and `remove_duplicates`.

They pass the input items on unchanged (same objects), only reordered or filtered.

Ordering values of mixed types (:func:`order_key`): booleans, then numbers, then text, then
lists, then objects; within a kind by value (lists and objects by their canonical JSON text).
Missing fields and nulls always sort last, for both orders; ``desc`` reverses the order of the
other values. Equality (:func:`canonical`) treats ``1`` and ``1.0`` as the same number and
objects with the same keys and values in any key order as the same object.
"""

from __future__ import annotations

import json
import random
from typing import Any

from flowlite.errors import ExpressionError, NodeError
from flowlite.expressions import has_expression
from flowlite.sdk import MISSING, Item, NodeContext, NodeType, Outputs, Param, get_field

__all__ = ["NODES", "canonical", "order_key"]


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def canonical(value: Any) -> Any:
    """A hashable key equal for equal JSON values (``1 == 1.0``; key order ignored)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ("null",)
    if isinstance(value, bool):  # apart from numbers: True == 1 in Python
        return "bool", value
    if isinstance(value, int | float):
        return "number", _normal(value)
    return "json", json.dumps(_normal(value), sort_keys=True, separators=(",", ":"), default=str)


def order_key(value: Any) -> tuple[int, Any]:
    """A key ordering any JSON values without a TypeError: (kind rank, value)."""
    if isinstance(value, bool):
        return 0, value
    if isinstance(value, int | float):
        return 1, value
    if isinstance(value, str):
        return 2, value
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return (3 if isinstance(value, list) else 4), text


# --- sort -------------------------------------------------------------------------------------


class Sort(NodeType):
    type = "sort"
    display_name = "Sort"
    category = "data"
    description = (
        "Sorts items by one or more fields (stable; missing fields and nulls last for both "
        "orders; mixed types order booleans, numbers, text, lists, objects), or shuffles them."
    )
    params = (
        Param(
            "by",
            "list",
            "Sort keys, most significant first: {field, order}. Evaluated once, for the first "
            "item.",
            fields=(
                Param("field", "string", "The field to sort by (dotted for nested)", required=True),
                Param("order", "options", options=("asc", "desc"), default="asc"),
            ),
        ),
        Param("random", "boolean", "Shuffle the items instead", default=False),
        Param("seed", "integer", "For random: a seed that makes the shuffle repeatable"),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        by, shuffle = parameters.get("by"), parameters.get("random")
        if shuffle is True and by is not None:
            return [("by", "give either `by` or `random: true`, not both")]
        if by is None and shuffle is not True and not has_expression(shuffle):
            return [("by", "give `by` (a list of {field, order}) or `random: true`")]
        return []

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        if len(items) < 2:
            return {"main": list(items)}
        if ctx.param("random", 0) is True:
            shuffled = list(items)
            random.Random(ctx.param("seed", 0)).shuffle(shuffled)
            return {"main": shuffled}
        keys = ctx.param("by", 0)
        if not isinstance(keys, list) or not keys:
            raise NodeError("parameter 'by' must be a non-empty list of {field, order}")
        order = list(range(len(items)))
        # stable sorts from the least significant key to the most significant
        for spec in reversed(keys):
            field, descending = _sort_spec(spec)
            values = [get_field(it["json"], field) for it in items]
            if all(type(v) is int or type(v) is float for v in values):
                order.sort(key=values.__getitem__, reverse=descending)
                continue
            present = 1 if descending else 0
            empty = 1 - present
            sort_keys = [
                (empty, 0, 0) if v is MISSING or v is None else (present, *order_key(v))
                for v in values
            ]
            order.sort(key=sort_keys.__getitem__, reverse=descending)
        return {"main": [items[i] for i in order]}


def _sort_spec(spec: Any) -> tuple[str, bool]:
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
        raise NodeError(f"each sort key needs a `field` name, got {spec!r}")
    direction = spec.get("order") or "asc"
    if direction not in ("asc", "desc"):
        raise NodeError(f"sort order must be asc or desc, got {direction!r}")
    return spec["field"], direction == "desc"


# --- limit ------------------------------------------------------------------------------------


class Limit(NodeType):
    type = "limit"
    display_name = "Limit"
    category = "data"
    description = "Keeps at most `max_items` items: the first ones or the last ones."
    params = (
        Param("max_items", "integer", "How many items to keep", default=1, minimum=0),
        Param(
            "keep",
            "options",
            "Keep the first or the last items",
            options=("first", "last"),
            default="first",
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        if not items:
            return {"main": []}
        count = ctx.param("max_items", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise NodeError(f"parameter 'max_items' must be a whole number >= 0, got {count!r}")
        keep = ctx.param("keep", 0)
        if keep not in ("first", "last"):
            raise NodeError(f"parameter 'keep' must be first or last, got {keep!r}")
        if count == 0:
            return {"main": []}
        return {"main": items[:count] if keep == "first" else items[-count:]}


# --- remove_duplicates ------------------------------------------------------------------------


class RemoveDuplicates(NodeType):
    type = "remove_duplicates"
    display_name = "Remove duplicates"
    category = "data"
    description = (
        "Keeps the first item of each set of duplicates, compared on some fields or on the "
        "whole json (1 and 1.0 are equal; key order does not matter)."
    )
    params = (
        Param(
            "fields",
            "list",
            "A field name or a list of them to compare (default: the whole json). An item "
            "without one of them fails. Evaluated once, for the first item.",
            element="string",
            alternatives=("string", "list"),
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        if not items:
            return {"main": []}
        fields = ctx.param("fields", 0)
        if isinstance(fields, str):
            fields = [fields]
        if fields is not None and (
            not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
        ):
            raise NodeError(f"parameter 'fields' must be a field name or a list, got {fields!r}")
        seen: set[Any] = set()
        out: list[Item] = []
        for index, item in enumerate(items):
            data = item["json"]
            try:
                if not fields:
                    key = canonical(data)
                else:
                    parts = []
                    for field in fields:
                        value = get_field(data, field)
                        if value is MISSING:
                            raise NodeError(f"field {field!r} is missing from the item")
                        parts.append(canonical(value))
                    key = tuple(parts)
            except (NodeError, ExpressionError) as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
                continue
            if key not in seen:
                seen.add(key)
                out.append(item)
        return {"main": out}


NODES: list[type[NodeType]] = [Sort, Limit, RemoveDuplicates]
