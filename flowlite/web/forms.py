"""Node panel forms: a node type's parameter schema (:class:`~flowlite.sdk.Param`) as form fields.

Each :class:`Field` becomes one widget in ``editor/_fields.html``; the editor script reads the
form back into the node's parameters by the same kinds (``data-k``), so the two stay in step:

- ``string``, ``code``, ``datetime``, ``options``: text (empty: the parameter is left out)
- ``number``, ``integer``: a number, or text when it holds an expression
- ``boolean``: a checkbox
- ``json``: any JSON value typed as JSON, anything else kept as text (``{{ }}`` expressions)
- ``map``: name/value rows; ``list``: one value a row; ``rows``: a list of objects, one
  fieldset a row; ``object``: a fieldset
- ``raw``: the value as JSON text, for shapes no widget fits (an expression in place of a list,
  lists nested in lists)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from flowlite.sdk import Param

__all__ = ["Field", "label_of", "param_fields", "settings_fields"]

_SCALARS = {"string", "number", "integer", "boolean", "options", "json", "code", "datetime"}


@dataclass
class Field:
    """One form field; ``path`` is the key in the parent object, ``id`` unique in the page."""

    path: str
    id: str
    kind: str
    label: str
    value: Any = None
    description: str = ""
    required: bool = False
    default: Any = None
    options: tuple[str, ...] = ()
    expressions: bool = True
    #: ``list``: the kind of every element; ``map``: the kind of the values
    element: str = "json"
    #: ``object``: its fields; ``rows``: the fields of each row
    children: list[Field] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)
    #: ``rows``: the fields of an empty row (ids hold ``__i__`` for the row number)
    template: list[Field] = field(default_factory=list)


def label_of(name: str) -> str:
    """``response_code`` -> ``Response code``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _text(value: Any) -> str:
    """A value in a text box: text as is, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _loose_text(value: Any) -> str:
    """A value in a box read back as JSON when it parses (``json`` kinds): text that would
    parse as something else (``"100"``, ``"true"``) is shown quoted so that it stays text."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _raw(param: Param, value: Any, ident: str) -> Field:
    text = "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)
    return Field(
        param.name,
        ident,
        "raw",
        label_of(param.name),
        text,
        (param.description + " (as JSON)").strip(),
        param.required,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def make_field(param: Param, value: Any, ident: str, depth: int = 0) -> Field:
    """The field of one parameter holding ``value`` (``None`` when unset)."""
    ident = _slug(ident)
    base = {
        "description": param.description,
        "required": param.required,
        "default": param.default,
        "expressions": param.expressions,
    }
    kind = param.type
    label = label_of(param.name)
    if kind in _SCALARS:
        if kind == "boolean":
            if value is None or isinstance(value, bool):
                checked = bool(param.default) if value is None else value
                return Field(param.name, ident, "boolean", label, checked, **base)
            kind = "json"
        if kind in ("string", "code", "datetime", "options") and not (
            value is None or isinstance(value, str)
        ):
            kind = "json"  # e.g. `condition: true` where text or a boolean is accepted
        text = _loose_text(value) if kind == "json" else _text(value)
        return Field(param.name, ident, kind, label, text, options=param.options, **base)
    if isinstance(value, str) and param.alternatives and "string" in param.alternatives:
        if kind == "list" and not param.fields:
            value = [value]
        else:
            return Field(param.name, ident, "json", label, _loose_text(value), **base)
    if depth > 0:
        return _raw(param, value, ident)
    if kind == "map":
        if value is None or isinstance(value, dict):
            pairs = [(key, _loose_text(sub)) for key, sub in (value or {}).items()]
            return Field(param.name, ident, "map", label, rows=pairs, **base)
    elif kind == "list" and not param.fields:
        if value is None or (
            isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)
        ):
            element = param.element or "json"
            element = element if element in ("string", "number", "integer") else "json"
            convert = _loose_text if element == "json" else _text
            texts = [convert(v) for v in value or []]
            return Field(param.name, ident, "list", label, element=element, rows=texts, **base)
    elif kind == "list":
        if value is None or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            rows = [
                [
                    make_field(sub, row.get(sub.name), f"{ident}-{n}-{sub.name}", 1)
                    for sub in param.fields
                ]
                for n, row in enumerate(value or [])
            ]
            template = [
                make_field(sub, None, f"{ident}-__i__-{sub.name}", 1) for sub in param.fields
            ]
            return Field(param.name, ident, "rows", label, rows=rows, template=template, **base)
    elif kind == "object" and (value is None or isinstance(value, dict)):
        children = [
            make_field(sub, (value or {}).get(sub.name), f"{ident}-{sub.name}", 1)
            for sub in param.fields
        ]
        return Field(param.name, ident, "object", label, children=children, **base)
    return _raw(param, value, ident)


def param_fields(params: tuple[Param, ...], values: dict[str, Any]) -> list[Field]:
    """The fields of a node's parameters; values of unknown parameters are kept as raw fields."""
    fields = [make_field(p, values.get(p.name), f"p-{p.name}") for p in params]
    known = {p.name for p in params}
    for name, value in values.items():
        if name not in known:
            extra = Param(name, "json", "Not a parameter of this node type")
            fields.append(_raw(extra, value, _slug(f"p-{name}")))
    return fields


SETTINGS = (
    Param(
        "on_error",
        "options",
        "When the node fails: stop the execution, continue with the failed items, or send them to an extra `error` output",
        options=("stop", "continue", "error_output"),
        default="stop",
    ),
    Param("timeout", "number", "Seconds for one run of the node (empty: no limit)", minimum=0),
    Param("execute_once", "boolean", "Run with the first input item only", default=False),
    Param(
        "always_output", "boolean", "Emit one empty item when the node outputs none", default=False
    ),
)

RETRY = (
    Param("max_tries", "integer", "Tries in all (1-10)", default=1, minimum=1, maximum=10),
    Param("wait", "number", "Seconds before the second try", default=0),
    Param("backoff", "number", "Factor applied to the wait after each try", default=1),
)


def settings_fields(node: dict[str, Any]) -> list[Field]:
    """The node's settings (``on_error``, ``retry``, ``timeout``, ...) as fields."""
    fields = [make_field(p, node.get(p.name), f"s-{p.name}") for p in SETTINGS]
    found = node.get("retry")
    retry: dict[str, Any] = found if isinstance(found, dict) else {}
    children = [make_field(p, retry.get(p.name), f"s-retry-{p.name}", 1) for p in RETRY]
    fields.insert(1, Field("retry", "s-retry", "object", "Retry", children=children))
    return fields
