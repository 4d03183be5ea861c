"""The `summarize` node: group items and aggregate fields, like a pivot table or SQL GROUP BY.

One output item per group, in the order groups first appear. It holds the group fields (left out
when the items lack them) and one field per aggregation named ``<op>_<field>``, dots in the field
name replaced by ``_`` (``sum_order_total``); a `count` without a field is named ``count``.

Missing and null values are skipped by every aggregation. `sum` and `avg` read numeric text as
numbers (``"12.5"``) and fail, naming the field, the item and the value, on anything else. `min`
and `max` compare numbers (and numeric text) as numbers; when a value is not numeric they order
all values as `sort` does and return the original value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flowlite.errors import NodeError
from flowlite.nodes.listops import canonical, order_key
from flowlite.nodes.transform import put_field
from flowlite.sdk import MISSING, Item, NodeContext, NodeType, Outputs, Param, get_field

__all__ = ["NODES", "OPERATIONS"]

OPERATIONS = (
    "count",
    "count_unique",
    "sum",
    "avg",
    "min",
    "max",
    "concat",
    "append",
    "first",
    "last",
)

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _number(value: Any) -> int | float | None:
    """The value as a number, numeric text included; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _whole(value: float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class Summarize(NodeType):
    type = "summarize"
    display_name = "Summarize"
    category = "data"
    description = (
        "Groups items by fields and aggregates each group (count, count_unique, sum, avg, min, "
        "max, concat, append, first, last) into one item per group, named <op>_<field>."
    )
    params = (
        Param(
            "group_by",
            "list",
            "Fields to group by (none: one group of all items, output even for no input)",
            element="string",
            alternatives=("list", "string"),
        ),
        Param(
            "aggregations",
            "list",
            "Aggregations: {field, op}. Missing and null values are skipped. Evaluated once, "
            "for the first item.",
            required=True,
            fields=(
                Param("field", "string", "The field (optional for count: then every item counts)"),
                Param("op", "options", options=OPERATIONS, required=True),
                Param("separator", "string", "For concat: text between values", default=", "),
            ),
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        aggregations = parameters.get("aggregations")
        if isinstance(aggregations, list):
            for i, spec in enumerate(aggregations):
                if isinstance(spec, dict) and spec.get("op") != "count" and not spec.get("field"):
                    problems.append((f"aggregations[{i}].field", f"{spec.get('op')} needs a field"))
        return problems

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        group_by = ctx.param("group_by", 0)
        if isinstance(group_by, str):
            group_by = [group_by]
        group_by = group_by or []
        if not isinstance(group_by, list) or not all(isinstance(f, str) for f in group_by):
            raise NodeError(f"parameter 'group_by' must be a list of field names, got {group_by!r}")
        if not items and group_by:
            return {"main": []}
        aggregations = ctx.param("aggregations", 0)
        if not isinstance(aggregations, list):
            raise NodeError("parameter 'aggregations' must be a list of {field, op}")
        specs = [_spec(a) for a in aggregations]

        groups: dict[Any, list[int]] = {}
        for index, item in enumerate(items):
            data = item["json"]
            key = tuple(_group_key(get_field(data, f)) for f in group_by)
            members = groups.get(key)
            if members is None:
                groups[key] = [index]
            else:
                members.append(index)
        if not groups:
            groups[()] = []

        out: list[Item] = []
        for members in groups.values():
            json_out: dict[str, Any] = {}
            if members:
                first = items[members[0]]["json"]
                for field in group_by:
                    value = get_field(first, field)
                    if value is not MISSING:
                        put_field(json_out, field, value)
            for field, op, separator, name in specs:
                json_out[name] = _aggregate(items, members, field, op, separator)
            out.append({"json": json_out})
        return {"main": out}


def _group_key(value: Any) -> Any:
    return ("missing",) if value is MISSING else canonical(value)


def _spec(spec: Any) -> tuple[str | None, str, str, str]:
    if not isinstance(spec, dict):
        raise NodeError(f"each aggregation must be an object {{field, op}}, got {spec!r}")
    op, field = spec.get("op"), spec.get("field") or None
    if op not in OPERATIONS:
        raise NodeError(f"unknown aggregation op {op!r} (known: {', '.join(OPERATIONS)})")
    if field is None and op != "count":
        raise NodeError(f"aggregation {op!r} needs a field")
    if field is not None and not isinstance(field, str):
        raise NodeError(f"an aggregation field must be a field name, got {field!r}")
    separator = spec.get("separator")
    separator = ", " if separator is None else str(separator)
    name = f"{op}_{field.replace('.', '_')}" if field else op
    return field, op, separator, name


def _aggregate(
    items: list[Item], members: list[int], field: str | None, op: str, separator: str
) -> Any:
    if field is None:  # count of items
        return len(members)
    pairs = [(i, get_field(items[i]["json"], field)) for i in members]
    values = [v for _, v in pairs if v is not MISSING and v is not None]
    if op == "count":
        return len(values)
    if op == "count_unique":
        return len({canonical(v) for v in values})
    if op == "append":
        return values
    if op == "first":
        return values[0] if values else None
    if op == "last":
        return values[-1] if values else None
    if op == "concat":
        return separator.join(_text(v) for v in values)
    if op in ("sum", "avg"):
        numbers = []
        for index, value in pairs:
            if value is MISSING or value is None:
                continue
            number = _number(value)
            if number is None:
                raise NodeError(
                    f"{op} of field {field!r} needs numbers, item {index} has {value!r}",
                    item_index=index,
                )
            numbers.append(number)
        if op == "sum":
            return _whole(sum(numbers)) if numbers else 0
        return _whole(sum(numbers) / len(numbers)) if numbers else None
    # min, max
    if not values:
        return None
    converted = [_number(v) for v in values]
    numeric = [n for n in converted if n is not None]
    if len(numeric) == len(values):
        return min(numeric) if op == "min" else max(numeric)
    pick = min if op == "min" else max
    return pick(values, key=order_key)


NODES: list[type[NodeType]] = [Summarize]
