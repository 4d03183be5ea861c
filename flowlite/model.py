"""The workflow document: msgspec structures, loading from JSON/YAML, and dumping back.

Loading is lossless in the sense that ``load(dump(w)) == w``; fields left at their default are
omitted when dumping, so a document that never spells out a default dumps back to itself.
Structural problems (wrong types, unknown fields) are collected per node and edge so that
`flowlite validate` can report every problem at once; the semantic rules live in
:mod:`flowlite.validation`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import msgspec

from flowlite.errors import Problem, WorkflowInvalid

__all__ = [
    "Connection",
    "Node",
    "Retry",
    "SaveSettings",
    "Settings",
    "Workflow",
    "dump_workflow",
    "load_workflow",
    "parse_document",
    "workflow_from_dict",
    "workflow_to_dict",
]

OnError = Literal["stop", "continue", "error_output"]


class Retry(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    max_tries: int = 1
    wait: float = 0.0
    backoff: float = 1.0


class Node(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    type: str
    version: int | None = None
    parameters: dict[str, Any] = {}
    credentials: dict[str, str] = {}
    disabled: bool = False
    position: list[float] | None = None
    notes: str | None = None
    retry: Retry | None = None
    on_error: OnError = "stop"
    execute_once: bool = False
    always_output: bool = False
    timeout: float | None = None


class Connection(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    source: str = msgspec.field(name="from")
    to: str
    output: str | int = 0
    input: int = 0


class SaveSettings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    success: Literal["all", "none"] = "all"
    error: Literal["all", "none"] = "all"
    manual: Literal["all", "none"] = "all"


class Settings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    timezone: str | None = None
    error_workflow: str | None = None
    timeout: float | None = None
    save: SaveSettings | None = None
    #: allow user code (the `code` node) to reach the network in this workflow
    code_network: bool = False


class Workflow(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, weakref=True):
    """A workflow document. Treat it as immutable once loaded: the engine caches by identity."""

    name: str
    nodes: list[Node]
    connections: list[Connection] = []
    description: str | None = None
    settings: Settings = msgspec.field(default_factory=Settings)
    pinned: dict[str, list[dict[str, Any]]] = {}
    #: tags shown in the editor's list (not part of the engine's semantics)
    tags: list[str] = []

    def node(self, name: str) -> Node | None:
        for node in self.nodes:
            if node.name == name:
                return node
        return None


_TOP_FIELDS = {"name", "description", "nodes", "connections", "settings", "pinned", "tags"}


def parse_document(text: str | bytes, *, filename: str = "") -> Any:
    """Parse JSON or YAML text (YAML when the file name says so, else JSON, else YAML)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    is_yaml = filename.endswith((".yaml", ".yml"))
    if not is_yaml:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if filename.endswith(".json"):
                raise WorkflowInvalid(
                    [Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}")]
                ) from None
    import yaml  # only YAML documents pay for it (`flowlite run` start time)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or "syntax error"
        raise WorkflowInvalid([Problem("", f"not valid YAML: {reason}{where}")]) from None


def _convert(data: Any, kind: Any, location: str, problems: list[Problem]) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        problems.append(Problem(location, _describe_validation(str(exc))))
        return None


def _describe_validation(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.retry.max_tries`"; keep it, drop the `$`
    return message.replace("`$.", "`").replace("- at `$`", "").strip()


def workflow_from_dict(data: Any) -> Workflow:
    """Build a :class:`Workflow`, collecting every structural problem before failing."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise WorkflowInvalid([Problem("", "a workflow document must be an object")])
    for key in data:
        if key not in _TOP_FIELDS:
            problems.append(Problem(str(key), "unknown field"))
    name = data.get("name")
    if not isinstance(name, str):
        problems.append(Problem("name", "is required and must be text"))

    nodes: list[Node] = []
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list):
        problems.append(Problem("nodes", "is required and must be a list"))
        raw_nodes = []
    for i, raw in enumerate(raw_nodes):
        label = f"nodes[{i}]"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            label = f"node {raw['name']!r}"
        node = _convert(raw, Node, label, problems)
        if node is not None:
            nodes.append(node)

    connections: list[Connection] = []
    raw_connections = data.get("connections", [])
    if not isinstance(raw_connections, list):
        problems.append(Problem("connections", "must be a list"))
        raw_connections = []
    for i, raw in enumerate(raw_connections):
        connection = _convert(raw, Connection, f"connections[{i}]", problems)
        if connection is not None:
            connections.append(connection)

    settings = _convert(data.get("settings", {}), Settings, "settings", problems)
    pinned = _convert(data.get("pinned", {}), dict[str, list[dict[str, Any]]], "pinned", problems)
    description = _convert(data.get("description"), str | None, "description", problems)
    tags = _convert(data.get("tags", []), list[str], "tags", problems)
    if problems:
        raise WorkflowInvalid(problems)
    return Workflow(
        name=name if isinstance(name, str) else "",
        nodes=nodes,
        connections=connections,
        description=description,
        settings=settings,
        pinned=pinned,
        tags=tags,
    )


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """The workflow as plain JSON data, defaults omitted."""
    data: dict[str, Any] = msgspec.to_builtins(workflow)
    if not data.get("settings"):
        data.pop("settings", None)
    return data


def load_workflow(path: str | Path) -> Workflow:
    """Load a workflow file (``.json``, ``.yaml`` or ``.yml``)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowInvalid([Problem(str(path), f"cannot read file: {exc.strerror}")]) from None
    return workflow_from_dict(parse_document(text, filename=file.name))


def dump_workflow(workflow: Workflow, fmt: Literal["json", "yaml"] = "json") -> str:
    """Serialize a workflow as JSON (indented) or YAML."""
    data = workflow_to_dict(workflow)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
