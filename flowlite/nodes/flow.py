"""Flow nodes: `if`, `filter`, `switch`, `noop`, `wait` and `stop_and_error`.

Routing nodes pass the input items on unchanged (the same item objects), each to the outputs
its conditions choose; conditions are described in :mod:`flowlite.nodes.conditions`. An item
whose condition cannot be decided (an expression fails, values that do not order) is handled
per the node's ``on_error``: with ``continue`` it goes to the first output with ``error`` set.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flowlite.errors import ExpressionError, NodeError
from flowlite.nodes.conditions import CONDITION_PARAMS, check_conditions, compile_conditions
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

__all__ = ["NODES", "Filter", "If", "Noop", "StopAndError", "Switch", "Wait"]

#: what a per-item failure may raise (anything else is a bug and fails the node)
_ITEM_ERRORS = (NodeError, ExpressionError, TypeError, ValueError)


class _Split(NodeType):
    """Sends each item to the first output when its conditions hold, else to the second."""

    category = "flow"
    params = CONDITION_PARAMS

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        return check_conditions(parameters)

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        matches = compile_conditions(ctx, ctx.parameters)
        yes: list[Item] = []
        no: list[Item] = []
        for index, item in enumerate(items):
            try:
                matched = matches(index)
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    yes.append(failed)
                continue
            (yes if matched else no).append(item)
        first, second = self.outputs
        return {first: yes, second: no}


class If(_Split):
    type = "if"
    display_name = "If"
    description = "Routes each item to `true` or `false` by a condition."
    outputs = ("true", "false")


class Filter(_Split):
    type = "filter"
    display_name = "Filter"
    description = "Keeps the items that meet a condition; the others go to `discarded`."
    outputs = ("kept", "discarded")


class Switch(NodeType):
    """Routes items to named outputs.

    With ``rules``, each rule names an output and holds a condition set; an item goes to the
    first rule that matches (or to every one with ``all_matches``). With ``value``, the
    outputs are the names listed in ``outputs``, and the value's result picks one per item:
    an output name, or a 0-based output number (a number or a text of digits). Items no rule
    or name picks go to the ``fallback`` output when ``fallback`` is ``output``, else nowhere.
    """

    type = "switch"
    display_name = "Switch"
    category = "flow"
    description = "Routes each item to the output of the rule it matches, or that a value names."
    outputs = ()  # named by the parameters: see output_names
    params = (
        Param(
            "rules",
            "list",
            "Rules in order: {output, condition | conditions, combine}",
            fields=(
                Param("output", "string", "The output's name", required=True, expressions=False),
                *CONDITION_PARAMS,
            ),
            expressions=False,
        ),
        Param(
            "value",
            "string",
            "Instead of rules: an expression whose result names or numbers the output",
            alternatives=("string", "integer"),
        ),
        Param(
            "outputs",
            "list",
            "With `value`: the output names, in order",
            element="string",
            expressions=False,
        ),
        Param(
            "fallback",
            "options",
            "Where unmatched items go: nowhere, or an extra output `fallback`",
            options=("none", "output"),
            default="none",
            expressions=False,
        ),
        Param(
            "all_matches",
            "boolean",
            "Send an item to every matching rule, not only the first",
            default=False,
            expressions=False,
        ),
    )

    def _names(self, parameters: dict[str, Any]) -> list[str]:
        rules = parameters.get("rules")
        if isinstance(rules, list):
            names = [r.get("output") for r in rules if isinstance(r, dict)]
        else:
            listed = parameters.get("outputs")
            names = list(listed) if isinstance(listed, list) else []
        return [name for name in names if isinstance(name, str)]

    def output_names(self, parameters: dict[str, Any]) -> list[str]:
        names = self._names(parameters)
        if parameters.get("fallback") == "output":
            names.append("fallback")
        return names

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        rules, value = parameters.get("rules"), parameters.get("value")
        if (rules is None) == (value is None):
            return [("rules", "give exactly one of `rules` or `value`")]
        problems: list[tuple[str, str]] = []
        if isinstance(rules, list):
            if not rules:
                problems.append(("rules", "must hold at least one rule"))
            if parameters.get("outputs") is not None:
                problems.append(("outputs", "only used with `value` (rules name their outputs)"))
            for i, rule in enumerate(rules):
                if isinstance(rule, dict):
                    problems.extend(check_conditions(rule, f"rules[{i}]"))
            where = "rules"
        else:
            outputs = parameters.get("outputs")
            if not outputs:
                problems.append(("outputs", "`value` needs `outputs`: the output names"))
            where = "outputs"
        seen: set[str] = set()
        reserved = {"error"} | ({"fallback"} if parameters.get("fallback") == "output" else set())
        for name in self._names(parameters):
            if not name.strip():
                problems.append((where, "an output name must not be empty"))
            elif name in seen:
                problems.append((where, f"output {name!r} is named twice"))
            elif name in reserved:
                problems.append((where, f"output name {name!r} is reserved"))
            seen.add(name)
        return problems

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        parameters = ctx.parameters
        names = self._names(parameters)
        outputs: Outputs = {name: [] for name in self.output_names(parameters)}
        fallback = outputs.get("fallback") if parameters.get("fallback") == "output" else None
        first = outputs[names[0]] if names else fallback
        if parameters.get("rules") is not None:
            self._route_by_rules(ctx, items, names, outputs, fallback, first)
        else:
            self._route_by_value(ctx, items, names, outputs, fallback, first)
        return outputs

    def _route_by_rules(
        self,
        ctx: NodeContext,
        items: list[Item],
        names: list[str],
        outputs: Outputs,
        fallback: list[Item] | None,
        first: list[Item] | None,
    ) -> None:
        rules = [
            (outputs[rule["output"]], compile_conditions(ctx, rule, f"rules[{i}]"))
            for i, rule in enumerate(ctx.parameters["rules"])
        ]
        every = bool(ctx.parameters.get("all_matches"))
        for index, item in enumerate(items):
            try:
                if every:
                    targets = [target for target, matches in rules if matches(index)]
                else:
                    targets = next(([t] for t, matches in rules if matches(index)), [])
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None and first is not None:
                    first.append(failed)
                continue
            for target in targets:
                target.append(item)
            if not targets and fallback is not None:
                fallback.append(item)

    def _route_by_value(
        self,
        ctx: NodeContext,
        items: list[Item],
        names: list[str],
        outputs: Outputs,
        fallback: list[Item] | None,
        first: list[Item] | None,
    ) -> None:
        value = ctx.evaluator(ctx.parameters["value"], "value")
        for index, item in enumerate(items):
            try:
                chosen = value(index)
            except _ITEM_ERRORS as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None and first is not None:
                    first.append(failed)
                continue
            target = _pick(chosen, names)
            if target is not None:
                outputs[target].append(item)
            elif fallback is not None:
                fallback.append(item)


def _pick(chosen: Any, names: list[str]) -> str | None:
    """The output a value names: a name, or a 0-based number (as a number or digits)."""
    if isinstance(chosen, str):
        if chosen in names:
            return chosen
        chosen = int(chosen) if chosen.strip().isdigit() else None
    if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(names):
        return names[chosen]
    return None


class Noop(NodeType):
    type = "noop"
    display_name = "No operation"
    category = "flow"
    description = "Passes its items through unchanged."

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {"main": items}


class StopAndError(NodeType):
    """Fails the node with ``message`` (an expression sees the first input item)."""

    type = "stop_and_error"
    display_name = "Stop and error"
    category = "flow"
    description = "Fails the node (and, with on_error stop, the execution) with a message."
    params = (
        Param(
            "message",
            "string",
            "The error message; an expression sees the first input item",
            default="the workflow was stopped by a stop_and_error node",
        ),
    )

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        message = ctx.param("message", 0)
        if not isinstance(message, str):
            message = json.dumps(message, default=str)
        raise NodeError(message or "stopped", node=ctx.node_name)


class Wait(NodeType):
    """Passes its items on after ``seconds`` or at ``until``.

    Both are evaluated once, for the first input item. ``until`` is an ISO 8601 datetime; one
    without an offset is read in the workflow's timezone. A time in the past does not wait.
    """

    type = "wait"
    display_name = "Wait"
    category = "flow"
    description = "Waits a number of seconds, or until a datetime, then passes its items on."
    params = (
        Param("seconds", "number", "How long to wait", minimum=0),
        Param("until", "datetime", "When to go on (ISO 8601; no offset: the workflow's timezone)"),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        if (parameters.get("seconds") is None) == (parameters.get("until") is None):
            return [("seconds", "give exactly one of `seconds` or `until`")]
        return []

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        now = dt.datetime.now(dt.UTC)
        if ctx.parameters.get("seconds") is not None:
            seconds = ctx.param("seconds", 0)
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise NodeError(
                    f"parameter 'seconds' must be a number >= 0, got {seconds!r}",
                    node=ctx.node_name,
                )
            try:
                when = now + dt.timedelta(seconds=seconds)
            except OverflowError:
                raise NodeError(
                    f"parameter 'seconds' is too large: {seconds!r}", node=ctx.node_name
                ) from None
        else:
            when = _as_utc(ctx.param("until", 0), ctx.timezone, ctx.node_name)
        await ctx.wait_until(when)
        return {"main": items}


def _as_utc(value: Any, zone: dt.tzinfo, node: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise NodeError(
                f"parameter 'until' is not an ISO 8601 datetime: {value!r}", node=node
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise NodeError(
            f"parameter 'until' must be a datetime, got {type(value).__name__}", node=node
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    when: dt.datetime = value.astimezone(dt.UTC)
    return when


NODES: list[type[NodeType]] = [If, Filter, Switch, Noop, Wait, StopAndError]
