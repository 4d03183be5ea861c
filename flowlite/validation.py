"""Semantic validation of a workflow: every rule of the spec, every problem at once.

Used by `flowlite validate`, before every run, and before every save. A workflow with problems
never starts.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from typing import Any

from flowlite.errors import Problem, WorkflowInvalid
from flowlite.expressions import expression_problems, has_expression
from flowlite.model import Connection, Node, Workflow
from flowlite.registry import Registry
from flowlite.sdk import NodeType, Param

__all__ = ["check_workflow", "output_names", "problems_of", "resolve_output"]


def output_names(node_type: NodeType, node: Node) -> list[str]:
    """Every output of a node, including ``error`` when it routes failures there."""
    names = node_type.output_names(node.parameters)
    if node.on_error == "error_output" and "error" not in names:
        names = [*names, "error"]
    return names


def resolve_output(names: list[str], output: str | int) -> str | None:
    """The output name an edge refers to (by name or index), or ``None``."""
    if isinstance(output, int):
        return names[output] if 0 <= output < len(names) else None
    if output in names:
        return output
    if output.isdigit() and int(output) < len(names):
        return names[int(output)]
    return None


def _check_value(param: Param, value: Any, where: str, problems: list[Problem]) -> None:
    if value is None:
        return
    if param.expressions and isinstance(value, str) and has_expression(value):
        for message in expression_problems(value):
            problems.append(Problem(where, message))
        return
    kinds = param.alternatives or (param.type,)
    errors: list[str] = []
    for kind in kinds:
        sub: list[Problem] = []
        _check_kind(param, kind, value, where, sub)
        if not sub:
            return
        errors.extend(p.message for p in sub if p.location == where)
        if len(kinds) == 1:
            problems.extend(sub)
            return
    problems.append(Problem(where, errors[0] if errors else f"has the wrong type for {kinds}"))


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "text",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _check_kind(param: Param, kind: str, value: Any, where: str, problems: list[Problem]) -> None:
    def wrong(expected: str) -> None:
        problems.append(Problem(where, f"must be {expected}, got {_type_name(value)}"))

    if kind in ("string", "code", "datetime"):
        if not isinstance(value, str):
            wrong("text")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            wrong("a number")
        else:
            _check_range(param, value, where, problems)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            wrong("a whole number")
        else:
            _check_range(param, value, where, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            wrong("true or false")
    elif kind == "options":
        if value not in param.options:
            allowed = ", ".join(repr(o) for o in param.options)
            problems.append(Problem(where, f"must be one of {allowed}, got {value!r}"))
    elif kind == "map":
        if not isinstance(value, dict):
            wrong("an object")
        elif param.expressions:
            for key, sub in value.items():
                if isinstance(sub, str) and has_expression(sub):
                    for message in expression_problems(sub):
                        problems.append(Problem(f"{where}.{key}", message))
    elif kind == "list":
        if not isinstance(value, list):
            wrong("a list")
            return
        for i, element in enumerate(value):
            if param.fields:
                _check_object(param, element, f"{where}[{i}]", problems)
            elif param.element:
                _check_value(Param(param.name, param.element), element, f"{where}[{i}]", problems)
            elif param.expressions:
                for message in expression_problems(element):
                    problems.append(Problem(f"{where}[{i}]", message))
    elif kind == "object":
        _check_object(param, value, where, problems)
    elif kind == "json" and param.expressions:
        for message in expression_problems(value):
            problems.append(Problem(where, message))


def _check_range(param: Param, value: float, where: str, problems: list[Problem]) -> None:
    if param.minimum is not None and value < param.minimum:
        problems.append(Problem(where, f"must be at least {param.minimum:g}, got {value}"))
    if param.maximum is not None and value > param.maximum:
        problems.append(Problem(where, f"must be at most {param.maximum:g}, got {value}"))


def _check_object(param: Param, value: Any, where: str, problems: list[Problem]) -> None:
    if not isinstance(value, dict):
        problems.append(Problem(where, f"must be an object, got {_type_name(value)}"))
        return
    _check_params(param.fields, value, where, problems, strict=bool(param.fields))


def _check_params(
    params: tuple[Param, ...],
    values: dict[str, Any],
    where: str,
    problems: list[Problem],
    *,
    strict: bool = True,
) -> None:
    known = {p.name: p for p in params}
    for name in values:
        if strict and name not in known:
            hint = ", ".join(known) or "none"
            problems.append(Problem(f"{where}.{name}", f"unknown parameter (known: {hint})"))
    for param in params:
        value = values.get(param.name)
        if value is None:
            if param.required:
                problems.append(Problem(f"{where}.{param.name}", "is required"))
            continue
        _check_value(param, value, f"{where}.{param.name}", problems)


def _check_node(node: Node, node_type: NodeType, problems: list[Problem]) -> None:
    where = f"node {node.name!r}"
    _check_params(node_type.params, node.parameters, f"{where}.parameters", problems)
    for path, message in node_type.check(node.parameters):
        problems.append(Problem(f"{where}.parameters.{path}", message))
    if node.retry is not None:
        if not 1 <= node.retry.max_tries <= 10:
            problems.append(Problem(f"{where}.retry.max_tries", "must be between 1 and 10"))
        if node.retry.wait < 0 or node.retry.backoff < 1:
            problems.append(Problem(f"{where}.retry", "wait must be >= 0 and backoff >= 1"))
    if node.timeout is not None and node.timeout <= 0:
        problems.append(Problem(f"{where}.timeout", "must be a positive number of seconds"))
    if node_type.is_trigger and node.on_error == "error_output":
        problems.append(Problem(f"{where}.on_error", "a trigger has no error output"))


def problems_of(workflow: Workflow, registry: Registry) -> list[Problem]:
    """Every problem of the workflow; an empty list when it may run."""
    problems: list[Problem] = []
    if not workflow.name.strip():
        problems.append(Problem("name", "must not be empty"))
    if not workflow.nodes:
        problems.append(Problem("nodes", "a workflow needs at least one node"))

    types: dict[str, NodeType] = {}
    seen: set[str] = set()
    single_kinds: dict[str, list[str]] = defaultdict(list)
    for i, node in enumerate(workflow.nodes):
        if not node.name.strip():
            problems.append(Problem(f"nodes[{i}].name", "must not be empty"))
            continue
        if node.name in seen:
            problems.append(Problem(f"node {node.name!r}", "duplicate node name"))
            continue
        seen.add(node.name)
        node_type = registry.find(node.type, node.version)
        if node_type is None:
            versions = registry.versions(node.type)
            if versions:
                known = ", ".join(map(str, versions))
                message = f"node type {node.type!r} has no version {node.version} (has {known})"
                problems.append(Problem(f"node {node.name!r}.version", message))
            else:
                problems.append(
                    Problem(f"node {node.name!r}.type", f"unknown node type {node.type!r}")
                )
            continue
        types[node.name] = node_type
        _check_node(node, node_type, problems)
        if node_type.single and not node.disabled:
            single_kinds[node.type].append(node.name)
    for kind, names in single_kinds.items():
        if len(names) > 1:
            listed = ", ".join(repr(n) for n in names)
            problems.append(Problem("nodes", f"only one {kind!r} node is allowed, found {listed}"))

    _check_connections(workflow, types, seen, problems)
    _check_settings(workflow, seen, problems)
    return problems


def _check_connections(
    workflow: Workflow, types: dict[str, NodeType], names: set[str], problems: list[Problem]
) -> None:
    by_name = {node.name: node for node in workflow.nodes}
    edges: dict[str, list[str]] = defaultdict(list)
    for i, edge in enumerate(workflow.connections):
        where = f"connections[{i}] ({edge.source} -> {edge.to})"
        ok = True
        for end in (edge.source, edge.to):
            if end not in names:
                problems.append(Problem(where, f"no node named {end!r}"))
                ok = False
        if not ok:
            continue
        source_type, target_type = types.get(edge.source), types.get(edge.to)
        if source_type is not None:
            outputs = output_names(source_type, by_name[edge.source])
            if resolve_output(outputs, edge.output) is None:
                listed = ", ".join(outputs) or "none"
                message = f"node {edge.source!r} has no output {edge.output!r} (outputs: {listed})"
                problems.append(Problem(where, message))
        if target_type is not None:
            count = target_type.input_count(by_name[edge.to].parameters)
            if count == 0:
                problems.append(Problem(where, f"node {edge.to!r} is a trigger and takes no input"))
            elif not 0 <= edge.input < count:
                message = f"node {edge.to!r} has no input {edge.input} (inputs: 0..{count - 1})"
                problems.append(Problem(where, message))
        edges[edge.source].append(edge.to)
    cycle = _find_cycle(edges)
    if cycle:
        problems.append(Problem("connections", "cycle: " + " -> ".join(cycle)))


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for start in list(edges):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path = [start]
        state[start] = 1
        while stack:
            node, position = stack[-1]
            children = edges.get(node, [])
            if position < len(children):
                stack[-1] = (node, position + 1)
                child = children[position]
                if state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if not state.get(child):
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def _check_settings(workflow: Workflow, names: set[str], problems: list[Problem]) -> None:
    zone = workflow.settings.timezone
    if zone is not None:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(Problem("settings.timezone", f"unknown timezone {zone!r}"))
    if workflow.settings.timeout is not None and workflow.settings.timeout <= 0:
        problems.append(Problem("settings.timeout", "must be a positive number of seconds"))
    for name in workflow.pinned:
        if name not in names:
            problems.append(Problem(f"pinned.{name}", f"no node named {name!r}"))


def check_workflow(workflow: Workflow, registry: Registry) -> None:
    """Raise :class:`WorkflowInvalid` listing every problem, if there are any."""
    problems = problems_of(workflow, registry)
    if problems:
        raise WorkflowInvalid(problems)


def incoming(workflow: Workflow) -> dict[str, list[Connection]]:
    """The edges arriving at each node, in document order."""
    found: dict[str, list[Connection]] = defaultdict(list)
    for edge in workflow.connections:
        found[edge.to].append(edge)
    return found
