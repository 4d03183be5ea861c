"""The node SDK: what a node type declares and what it gets while it runs.

Nodes never change the items they receive (other nodes' outputs share them); they build new
dicts instead.

A node type is a subclass of :class:`NodeType` with a type name, a version, a parameter schema
(a tuple of :class:`Param`), its inputs and outputs, and ``async def run(ctx, items)``. Built-in
nodes use exactly this SDK; plugins register theirs under the entry-point group
``flowlite.nodes``.

Items are plain dicts ``{"json": {...}, "binary": {...}}`` (``binary`` optional), chosen over
classes because hundreds of thousands of them flow through a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from flowlite.errors import NodeError

__all__ = [
    "MISSING",
    "Item",
    "NodeContext",
    "NodeType",
    "Outputs",
    "Param",
    "ParamType",
    "WebhookResponse",
    "as_items",
    "get_field",
    "has_field",
    "item",
    "require_field",
    "set_field",
    "unset_field",
]

Item = dict[str, Any]
Outputs = dict[str, list[Item]]

ParamType = Literal[
    "string",  # text
    "number",  # int or float
    "integer",
    "boolean",
    "options",  # one of Param.options
    "json",  # any JSON value
    "map",  # object of name -> value (values may be expressions)
    "list",  # list of values, or of objects described by Param.fields
    "object",  # an object described by Param.fields
    "code",  # source code shown in a code editor
    "datetime",  # ISO 8601 text
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Param:
    """One parameter of a node type: drives validation, `flowlite nodes describe` and forms."""

    name: str
    type: ParamType
    description: str = ""
    required: bool = False
    default: Any = None
    options: tuple[str, ...] = ()
    #: for ``list`` of objects and ``object``: the fields of each object
    fields: tuple[Param, ...] = ()
    #: for ``list``: the type of plain elements when ``fields`` is empty
    element: ParamType | None = None
    #: ``False`` when the value is used as written (e.g. the ``code`` of a code node)
    expressions: bool = True
    minimum: float | None = None
    maximum: float | None = None
    #: several accepted shapes, e.g. ``fields`` of remove_duplicates is a name or a list
    alternatives: tuple[ParamType, ...] = ()

    def describe(self) -> dict[str, Any]:
        """A JSON description of this parameter."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.alternatives:
            out["alternatives"] = list(self.alternatives)
        if self.description:
            out["description"] = self.description
        if self.required:
            out["required"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.options:
            out["options"] = list(self.options)
        if self.fields:
            out["fields"] = [f.describe() for f in self.fields]
        if self.element:
            out["element"] = self.element
        if not self.expressions:
            out["expressions"] = False
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass
class WebhookResponse:
    """What `respond_to_webhook` (or a webhook in `last_node` mode) answers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str | None = None


class NodeContext(Protocol):
    """What a running node can see and do. The executor provides it."""

    @property
    def node_name(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]:
        """The node's raw parameters, expressions unevaluated."""
        ...

    @property
    def inputs(self) -> list[list[Item] | None]:
        """Every input's items (``None`` for an input that received nothing)."""
        ...

    @property
    def run_index(self) -> int: ...

    @property
    def execution_id(self) -> str: ...

    @property
    def mode(self) -> str: ...

    @property
    def workflow(self) -> dict[str, Any]:
        """``{id, name, active}`` of the running workflow."""
        ...

    @property
    def timezone(self) -> dt.tzinfo: ...

    @property
    def trigger_items(self) -> list[Item]:
        """The items the run started with (for trigger nodes)."""
        ...

    def param(self, name: str, index: int = 0, default: Any = MISSING) -> Any:
        """The parameter ``name`` evaluated for input item ``index`` (expressions resolved)."""
        ...

    def param_is_static(self, name: str) -> bool:
        """True when the parameter holds no expression, so it is the same for every item."""
        ...

    def evaluate(self, value: Any, index: int = 0) -> Any:
        """Evaluate an arbitrary value (string with ``{{ }}``, or nested) for item ``index``."""
        ...

    def evaluator(self, value: Any, label: str = "") -> Callable[[int], Any]:
        """Compile ``value`` once; the result maps an item index to the evaluated value.

        Prefer this over :meth:`evaluate` in per-item loops. ``label`` names the parameter
        in error messages.
        """
        ...

    def item_error(self, index: int, error: Exception) -> Item | None:
        """Handle the failure of input item ``index`` per the node's ``on_error``.

        Raises a :class:`NodeError` when ``on_error`` is ``stop``. With ``continue`` it returns
        the item (with ``error`` added to its json) for the node to put on its first output,
        in place. With ``error_output`` it routes the item to the ``error`` output itself and
        returns ``None``.
        """
        ...

    def log(self, message: str) -> None:
        """Add a line to this node run's logs in the execution record."""
        ...

    async def credential(self, slot: str) -> dict[str, Any]:
        """The decrypted data of the credential assigned to ``slot``."""
        ...

    async def run_workflow(
        self, reference: str, items: list[Item], *, wait: bool = True
    ) -> list[Item]:
        """Run another workflow (id, name, or file path) as a sub-execution."""
        ...

    def respond(self, response: WebhookResponse) -> None:
        """Answer the webhook request that started this execution."""
        ...

    async def run_code(
        self, code: str, mode: str, items: list[Item], *, timeout: float | None
    ) -> tuple[list[Item], list[str]]:
        """Run user code in the sandbox; returns the items and the printed lines."""
        ...

    def wait_until(self, when: dt.datetime) -> Awaitable[None]:
        """Pause this node until ``when`` (the server may persist a long wait)."""
        ...


class NodeType:
    """Base class of every node type. Subclasses set the class attributes and ``run``."""

    type: ClassVar[str]
    version: ClassVar[int] = 1
    display_name: ClassVar[str] = ""
    category: ClassVar[Literal["trigger", "flow", "data", "integration", "other"]] = "other"
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    #: number of inputs; 0 for triggers
    inputs: ClassVar[int] = 1
    #: names of the outputs; the first is the default
    outputs: ClassVar[tuple[str, ...]] = ("main",)
    #: a multi-input node that does not run when one of its inputs is dead
    requires_all_inputs: ClassVar[bool] = False
    #: a trigger of which a workflow may hold only one
    single: ClassVar[bool] = False

    @property
    def is_trigger(self) -> bool:
        return self.inputs == 0

    def input_count(self, parameters: dict[str, Any]) -> int:
        """How many inputs a node with these parameters has."""
        return self.inputs

    def needs_all_inputs(self, parameters: dict[str, Any]) -> bool:
        """Whether a multi-input node with these parameters is skipped when an input is dead."""
        return self.requires_all_inputs

    def output_names(self, parameters: dict[str, Any]) -> list[str]:
        """The output names of a node with these parameters (the ``error`` output is extra)."""
        return list(self.outputs)

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        """Extra checks beyond the schema: a list of ``(parameter path, message)``."""
        return []

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        """Run once for a batch of input items; return items per output name."""
        raise NodeError(f"node type {self.type!r} cannot run", node=ctx.node_name)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """A JSON description of the type (used by `flowlite nodes describe` and the editor)."""
        return {
            "type": cls.type,
            "version": cls.version,
            "display_name": cls.display_name or cls.type.replace("_", " ").title(),
            "category": cls.category,
            "description": cls.description,
            "inputs": cls.inputs,
            "outputs": list(cls.outputs),
            "parameters": [p.describe() for p in cls.params],
        }


# --- Items and dotted field names --------------------------------------------------------


def as_items(values: Any) -> list[Item]:
    """Items from JSON: an object is one item, a list several; the ``json`` wrapper is optional."""
    if isinstance(values, dict):
        values = [values]
    out: list[Item] = []
    for value in values:
        if (
            isinstance(value, dict)
            and isinstance(value.get("json"), dict)
            and set(value) <= {"json", "binary"}
        ):
            out.append(value)
        else:
            out.append({"json": value})
    return out


def item(json: dict[str, Any], binary: dict[str, Any] | None = None) -> Item:
    """Build an item."""
    return {"json": json, "binary": binary} if binary else {"json": json}


def _split(path: str) -> list[str]:
    return path.split(".") if "." in path else [path]


def get_field(data: Any, path: str, default: Any = MISSING) -> Any:
    """Read a dotted field (``order.total``); list elements by number (``lines.0.sku``).

    A key that literally contains dots is found first, so ``{"a.b": 1}`` works too.
    """
    if isinstance(data, dict) and path in data:
        return data[path]
    current = data
    for part in _split(path):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            position = int(part)
            if -len(current) <= position < len(current):
                current = current[position]
            else:
                return default
        else:
            return default
    return current


def has_field(data: Any, path: str) -> bool:
    """Whether a dotted field exists."""
    return get_field(data, path, MISSING) is not MISSING


def set_field(data: dict[str, Any], path: str, value: Any) -> None:
    """Write a dotted field, creating objects on the way."""
    parts = _split(path)
    current = data
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[parts[-1]] = value


def unset_field(data: dict[str, Any], path: str) -> bool:
    """Remove a dotted field; returns whether it was there."""
    if path in data:
        del data[path]
        return True
    parts = _split(path)
    current: Any = data
    for part in parts[:-1]:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    if isinstance(current, dict) and parts[-1] in current:
        del current[parts[-1]]
        return True
    return False


def require_field(data: Any, path: str, node: str | None = None) -> Any:
    """Read a dotted field or fail with an error that names it."""
    value = get_field(data, path)
    if value is MISSING:
        raise NodeError(f"field {path!r} is missing from the item", node=node)
    return value
