"""Item-shaping data nodes: `set`, `rename_keys`, `split_out` and `aggregate`.

Items passed in are shared with other nodes' outputs, so nothing here changes them: each output
item gets a shallow copy of its input's json, and a dotted write or removal copies the nested
objects along its path (:func:`put_field`, :func:`drop_field`) instead of changing them in place.
"""

from __future__ import annotations

import contextlib
import copy
import gc
from collections.abc import Callable, Iterator
from typing import Any

from flowlite.errors import ExpressionError, NodeError
from flowlite.expressions import has_expression
from flowlite.sdk import MISSING, Item, NodeContext, NodeType, Outputs, Param, get_field

__all__ = ["NODES", "drop_field", "gc_paused", "param_reader", "put_field"]


def put_field(data: dict[str, Any], path: str, value: Any) -> None:
    """Write a dotted field into ``data`` (a dict the caller owns), copying nested objects.

    Like :func:`flowlite.sdk.set_field`, a non-object on the way is replaced by an object; unlike
    it, the objects on the path are copied first, so dicts shared with input items stay intact.
    """
    if "." not in path:
        data[path] = value
        return
    parts = path.split(".")
    current = data
    for part in parts[:-1]:
        nested = current.get(part)
        nested = dict(nested) if isinstance(nested, dict) else {}
        current[part] = nested
        current = nested
    current[parts[-1]] = value


def drop_field(data: dict[str, Any], path: str) -> bool:
    """Remove a dotted field from ``data`` (a dict the caller owns), copying nested objects.

    A key that literally holds the dots is removed first, as :func:`flowlite.sdk.get_field` finds
    it first. Returns whether the field was there.
    """
    if path in data:
        del data[path]
        return True
    parts = path.split(".")
    current: Any = data
    for part in parts[:-1]:
        current = current.get(part) if isinstance(current, dict) else None
    if not isinstance(current, dict) or parts[-1] not in current:
        return False
    current = data
    for part in parts[:-1]:
        nested = dict(current[part])
        current[part] = nested
        current = nested
    del current[parts[-1]]
    return True


def param_reader(ctx: NodeContext, name: str) -> Callable[[int], Any]:
    """A function from item index to the parameter's value; static values are read once."""
    if ctx.param_is_static(name):
        value = ctx.param(name, 0)
        return lambda index: value
    return lambda index: ctx.param(name, index)


def _new_item(json: dict[str, Any], source: Item) -> Item:
    binary = source.get("binary")
    return {"json": json, "binary": binary} if binary else {"json": json}


def _field_list(value: Any, label: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise NodeError(f"parameter {label!r} must be a list of field names, got {value!r}")


_ITEM_ERRORS = (NodeError, ExpressionError, TypeError, ValueError)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a loop builds many new items.

    Building 100,000 items triggers collections that scan every live item again and again
    (about four fifths of the time of a `set` run). The loops here create no reference
    cycles, and no other task runs during them (they do not await).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- set -------------------------------------------------------------------------------------


class Set(NodeType):
    type = "set"
    display_name = "Edit fields (set)"
    category = "data"
    description = (
        "Sets fields on every item (values or expressions; dotted names write nested objects), "
        "keeps all, none or some of the input's fields, and removes fields."
    )
    params = (
        Param(
            "fields",
            "map",
            "Field name -> value or expression. Dotted names (`order.total`) write nested "
            "objects. Set after `keep` and `remove` are applied.",
        ),
        Param(
            "keep",
            "options",
            "Which input fields the output starts from: all of them, none, or `only` those "
            "listed in `include`",
            options=("all", "none", "only"),
            default="all",
        ),
        Param(
            "include",
            "list",
            "For keep=only: the fields to keep (missing ones are skipped)",
            element="string",
        ),
        Param(
            "remove",
            "list",
            "Fields to remove from the output (missing ones are ignored); applied before "
            "`fields` are set",
            element="string",
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        if parameters.get("keep") == "only" and parameters.get("include") is None:
            return [("include", "keep=only needs `include`: the fields to keep")]
        return []

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        if not items:
            return {"main": []}
        fields = ctx.parameters.get("fields")
        fast = (
            (fields is None or isinstance(fields, dict))
            and ctx.param_is_static("keep")
            and ctx.param("keep", 0) == "all"
            and ctx.parameters.get("remove") is None
            and not any("." in name for name in fields or {})
        )
        with gc_paused():
            if fast:
                return {"main": self._run_fast(ctx, items, fields or {})}
            return {"main": self._run_general(ctx, items)}

    def _run_fast(self, ctx: NodeContext, items: list[Item], fields: dict[str, Any]) -> list[Item]:
        """Top-level fields on a copy of each input's json: the common case, kept tight."""
        static: list[tuple[str, Any]] = []
        shared: list[tuple[str, Any]] = []  # static objects and lists: copied per item
        dynamic: list[tuple[str, Callable[[int], Any]]] = []
        for name, value in fields.items():
            if has_expression(value):
                dynamic.append((name, ctx.evaluator(value, f"fields.{name}")))
            elif isinstance(value, dict | list):
                shared.append((name, value))
            else:
                static.append((name, value))
        out: list[Item] = []
        append = out.append
        for index, source in enumerate(items):
            try:
                json = dict(source["json"])
                for name, value in static:
                    json[name] = value
                for name, value in shared:
                    json[name] = copy.deepcopy(value)
                for name, evaluate in dynamic:
                    json[name] = evaluate(index)
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    append(failed)
                continue
            if "binary" in source:
                append({"json": json, "binary": source["binary"]})
            else:
                append({"json": json})
        return out

    def _run_general(self, ctx: NodeContext, items: list[Item]) -> list[Item]:
        read_keep = param_reader(ctx, "keep")
        read_include = param_reader(ctx, "include")
        read_remove = param_reader(ctx, "remove")
        read_fields = param_reader(ctx, "fields")
        raw_fields = ctx.parameters.get("fields")
        evaluators: dict[str, Callable[[int], Any]] | None = None
        copied: set[str] = set()  # static objects and lists: copied per item
        if raw_fields is None or isinstance(raw_fields, dict):
            evaluators = {}
            for name, value in (raw_fields or {}).items():
                evaluators[name] = ctx.evaluator(value, f"fields.{name}")
                if isinstance(value, dict | list) and not has_expression(value):
                    copied.add(name)
        out: list[Item] = []
        for index, source in enumerate(items):
            try:
                original = source["json"]
                keep = read_keep(index)
                if keep == "none":
                    json: dict[str, Any] = {}
                elif keep == "only":
                    json = {}
                    for name in _field_list(read_include(index), "include"):
                        value = get_field(original, name)
                        if value is not MISSING:
                            put_field(json, name, value)
                elif keep == "all":
                    json = dict(original)
                else:
                    raise NodeError(f"parameter 'keep' must be all, none or only, got {keep!r}")
                for name in _field_list(read_remove(index), "remove"):
                    drop_field(json, name)
                if evaluators is not None:
                    for name, evaluate in evaluators.items():
                        value = evaluate(index)
                        put_field(json, name, copy.deepcopy(value) if name in copied else value)
                else:
                    values = read_fields(index)
                    if not isinstance(values, dict):
                        raise NodeError(
                            f"parameter 'fields' must give an object, got {type(values).__name__}"
                        )
                    for name, value in values.items():
                        put_field(json, name, value)
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
                continue
            out.append(_new_item(json, source))
        return out


# --- rename_keys ------------------------------------------------------------------------------


class RenameKeys(NodeType):
    type = "rename_keys"
    display_name = "Rename keys"
    category = "data"
    description = (
        "Renames fields (dotted names on both sides). An item without a `from` field is left "
        "unchanged for that rename, as in n8n."
    )
    params = (
        Param(
            "rename",
            "list",
            "Renames applied in order: {from, to}",
            required=True,
            fields=(
                Param("from", "string", "The field to rename (dotted for nested)", required=True),
                Param("to", "string", "Its new name (dotted writes nested)", required=True),
            ),
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        read = param_reader(ctx, "rename")
        out: list[Item] = []
        for index, source in enumerate(items):
            try:
                renames = read(index)
                if not isinstance(renames, list):
                    raise NodeError("parameter 'rename' must be a list of {from, to}")
                original = source["json"]
                json = None
                for rename in renames:
                    old, new = _rename_pair(rename)
                    value = get_field(original if json is None else json, old)
                    if value is MISSING or old == new:
                        continue
                    if json is None:
                        json = dict(original)
                    drop_field(json, old)
                    put_field(json, new, value)
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
                continue
            out.append(source if json is None else _new_item(json, source))
        return {"main": out}


def _rename_pair(rename: Any) -> tuple[str, str]:
    if not isinstance(rename, dict):
        raise NodeError(f"each rename must be an object {{from, to}}, got {rename!r}")
    old, new = rename.get("from"), rename.get("to")
    if not isinstance(old, str) or not old or not isinstance(new, str) or not new:
        raise NodeError(f"a rename needs text `from` and `to`, got {rename!r}")
    return old, new


# --- split_out --------------------------------------------------------------------------------


class SplitOut(NodeType):
    type = "split_out"
    display_name = "Split out"
    category = "data"
    description = (
        "One item per element of a list field. An object element becomes the item's json; any "
        "other element is stored under `into`. A value that is not a list counts as a list of "
        "one element; an empty list gives no item."
    )
    params = (
        Param("field", "string", "The list field to split (dotted for nested)", required=True),
        Param(
            "into",
            "string",
            "Where a non-object element goes (default: the field name)",
        ),
        Param(
            "include",
            "options",
            "none: the new items hold only the element; all: also every other field of the "
            "parent item (and its binary data)",
            options=("none", "all"),
            default="none",
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        read_field = param_reader(ctx, "field")
        read_into = param_reader(ctx, "into")
        read_include = param_reader(ctx, "include")
        out: list[Item] = []
        for index, source in enumerate(items):
            try:
                field = read_field(index)
                if not isinstance(field, str) or not field:
                    raise NodeError(f"parameter 'field' must be a field name, got {field!r}")
                into = read_into(index) or field
                include = read_include(index)
                if include not in ("none", "all"):
                    raise NodeError(f"parameter 'include' must be none or all, got {include!r}")
                original = source["json"]
                value = get_field(original, field)
                if value is MISSING:
                    raise NodeError(f"field {field!r} is missing from the item")
                elements = value if isinstance(value, list) else [value]
                parent: dict[str, Any] = {}
                if include == "all":
                    parent = dict(original)
                    drop_field(parent, field)
                produced: list[Item] = []
                for element in elements:
                    if isinstance(element, dict):
                        json = {**parent, **element} if parent else dict(element)
                    else:
                        json = dict(parent)
                        put_field(json, into, element)
                    if include == "all":
                        produced.append(_new_item(json, source))
                    else:
                        produced.append({"json": json})
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
                continue
            out.extend(produced)
        return {"main": out}


# --- aggregate --------------------------------------------------------------------------------


class Aggregate(NodeType):
    type = "aggregate"
    display_name = "Aggregate"
    category = "data"
    description = (
        "Combines all items into one: `fields` collects each field's values into a list "
        "(items without the field are skipped), or `all: true` collects every item's json "
        "under `into`. Emits one item even for no input (with empty lists)."
    )
    params = (
        Param(
            "fields",
            "list",
            "Fields to collect: {field, as}; `as` defaults to the field name (dotted writes "
            "nested). Evaluated once, for the first item.",
            fields=(
                Param("field", "string", "The field to collect", required=True),
                Param("as", "string", "The output field (default: the field name)"),
            ),
        ),
        Param("all", "boolean", "Collect every item's json instead of some fields", default=False),
        Param("into", "string", "For all: the output field holding the list", default="data"),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        fields, everything = parameters.get("fields"), parameters.get("all")
        if everything is True and fields is not None:
            return [("fields", "give either `fields` or `all: true`, not both")]
        if fields is None and everything is not True and not has_expression(everything):
            return [("fields", "give `fields` (a list of {field, as}) or `all: true`")]
        return []

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        if ctx.param("all", 0) is True:
            into = ctx.param("into", 0)
            if not isinstance(into, str) or not into:
                raise NodeError(f"parameter 'into' must be a field name, got {into!r}")
            json: dict[str, Any] = {}
            put_field(json, into, [it["json"] for it in items])
            return {"main": [{"json": json}]}
        specs = ctx.param("fields", 0)
        if not isinstance(specs, list):
            raise NodeError("parameter 'fields' must be a list of {field, as}")
        json = {}
        for spec in specs:
            if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
                raise NodeError(f"each entry of 'fields' needs a `field` name, got {spec!r}")
            field: str = spec["field"]
            values = [
                value
                for value in (get_field(it["json"], field) for it in items)
                if value is not MISSING
            ]
            put_field(json, spec.get("as") or field, values)
        return {"main": [{"json": json}]}


NODES: list[type[NodeType]] = [Set, RenameKeys, SplitOut, Aggregate]
