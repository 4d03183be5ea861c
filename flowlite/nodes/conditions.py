"""Conditions shared by `if`, `filter` and `switch`: the parameters, their checks, evaluation.

A condition set is either ``condition`` (an expression; an item matches when its result is
truthy in the Python sense) or ``conditions``, a list of ``{left, op, right}`` joined by
``combine`` (``and``, the default, or ``or``). ``left`` and ``right`` are values or expressions,
evaluated per item. The operators:

- ``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``: when one side is a number and the other a
  numeric string, both compare as numbers (``"10" gt 9`` holds); two strings compare as text.
  A boolean equals only a boolean. A date or datetime compares with an ISO string as a date or
  datetime. Ordering with a missing or null side is false; ordering values of kinds that do
  not order (text against a list, say) fails the item.
- ``contains``, ``not_contains``: text contains text, a list contains an element (``eq``
  rules), an object contains a key.
- ``starts_with``, ``ends_with``, ``matches`` (a Python regex, searched anywhere; anchor with
  ``^`` and ``$``): on text; numbers are taken as their text; missing or null is false.
- ``in``: ``left`` is an element of the list, a substring of the text, or a key of the object
  ``right``.
- ``exists`` / ``not_exists``: ``left`` is typically ``{{ json.x }}``; a field that is missing
  or null does not exist, any other value (``0``, ``""``, ``false`` included) exists.
- ``empty`` / ``not_empty``: missing, null, ``""``, ``[]`` and ``{}`` are empty.
- ``is_true`` / ``is_false``: the boolean, or the text ``"true"`` / ``"false"`` in any case.
- ``is_number`` (not a boolean, not a numeric string), ``is_string``, ``is_list``, ``is_object``.

Regexes are guarded against catastrophic backtracking: the pattern may hold at most
:data:`MAX_PATTERN` characters, the text at most :data:`MAX_SUBJECT`, and a pattern that
repeats a group made only of variable repeats (the ``(a+)+`` family) is refused; use an atomic
group ``(?>...)`` or a possessive quantifier (``++``, ``*+``) instead. Compiled patterns are
cached.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import operator
import re
from collections.abc import Callable
from typing import Any

from flowlite.errors import NodeError
from flowlite.expressions import has_expression
from flowlite.sdk import MISSING, NodeContext, Param

__all__ = [
    "CONDITION_PARAMS",
    "MAX_PATTERN",
    "MAX_SUBJECT",
    "OPS",
    "UNARY_OPS",
    "check_conditions",
    "compare",
    "compile_conditions",
]

OPS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches",
    "in",
    "exists",
    "not_exists",
    "empty",
    "not_empty",
    "is_true",
    "is_false",
    "is_number",
    "is_string",
    "is_list",
    "is_object",
)
#: operators that look at ``left`` only
UNARY_OPS = frozenset(
    {
        "exists",
        "not_exists",
        "empty",
        "not_empty",
        "is_true",
        "is_false",
        "is_number",
        "is_string",
        "is_list",
        "is_object",
    }
)
MAX_PATTERN = 1000
MAX_SUBJECT = 20_000

CONDITION_FIELDS = (
    Param("left", "json", "The value to test: a value or an expression such as {{ json.total }}"),
    Param("op", "options", "The operator", required=True, options=OPS, expressions=False),
    Param("right", "json", "The value to compare with (not used by unary operators)"),
)

CONDITION_PARAMS = (
    Param(
        "condition",
        "string",
        "An expression; an item matches when its result is truthy",
        alternatives=("string", "boolean"),
    ),
    Param(
        "conditions",
        "list",
        "Conditions of the form {left, op, right}, joined by `combine`",
        fields=CONDITION_FIELDS,
        expressions=False,
    ),
    Param(
        "combine",
        "options",
        "How `conditions` join: all must hold (and) or one (or)",
        options=("and", "or"),
        default="and",
        expressions=False,
    ),
)

Predicate = Callable[[int], bool]


# --- checks ------------------------------------------------------------------------------


def check_conditions(spec: dict[str, Any], where: str = "") -> list[tuple[str, str]]:
    """Cross-field problems of a condition set (the schema checks types and op names)."""
    prefix = f"{where}." if where else ""
    condition, conditions = spec.get("condition"), spec.get("conditions")
    if (condition is None) == (conditions is None):
        return [(f"{prefix}condition", "give exactly one of `condition` or `conditions`")]
    problems: list[tuple[str, str]] = []
    if isinstance(condition, str):
        text = condition.strip()
        if not (text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1):
            problems.append(
                (
                    f"{prefix}condition",
                    "must be one whole {{ expression }} (text is always true); "
                    f"e.g. {{{{ json.total > 100 }}}}, got {condition!r}",
                )
            )
    if isinstance(conditions, list):
        if not conditions:
            problems.append((f"{prefix}conditions", "must hold at least one condition"))
        for i, cond in enumerate(conditions):
            if not isinstance(cond, dict):
                continue  # the schema reports it
            op, place = cond.get("op"), f"{prefix}conditions[{i}]"
            if op in OPS and op not in UNARY_OPS and "right" not in cond:
                problems.append((f"{place}.right", f"operator {op!r} needs `right`"))
            right = cond.get("right")
            if op == "matches" and isinstance(right, str) and not has_expression(right):
                try:
                    _regex(right)
                except NodeError as exc:
                    problems.append((f"{place}.right", exc.message))
    return problems


# --- evaluation --------------------------------------------------------------------------


def compile_conditions(ctx: NodeContext, spec: dict[str, Any], label: str = "") -> Predicate:
    """The predicate of a condition set: item index -> whether the item matches.

    ``spec`` holds the raw ``condition`` or ``conditions`` and ``combine``; ``label`` prefixes
    parameter names in error messages (e.g. ``rules[0]``). The predicate raises
    :class:`NodeError` for an item it cannot decide.
    """
    prefix = f"{label}." if label else ""
    if spec.get("conditions") is None:
        value = ctx.evaluator(spec.get("condition"), f"{prefix}condition")
        return lambda index: bool(value(index))
    predicates = [
        _compile_one(ctx, cond, f"{prefix}conditions[{i}]")
        for i, cond in enumerate(spec["conditions"])
    ]
    if len(predicates) == 1:
        return predicates[0]
    if spec.get("combine") == "or":
        # plain loops, not any()/all() over a generator: this runs once per item
        def any_holds(index: int) -> bool:
            for predicate in predicates:  # noqa: SIM110
                if predicate(index):
                    return True
            return False

        return any_holds

    def all_hold(index: int) -> bool:
        for predicate in predicates:  # noqa: SIM110
            if not predicate(index):
                return False
        return True

    return all_hold


def _compile_one(ctx: NodeContext, cond: dict[str, Any], label: str) -> Predicate:
    op = cond["op"]
    test = _TESTS[op]
    left = ctx.evaluator(cond.get("left"), f"{label}.left")
    right = ctx.evaluator(cond.get("right"), f"{label}.right")

    def predicate(index: int) -> bool:
        try:
            return test(left(index), right(index))
        except NodeError as exc:
            if exc.item_index is not None:  # an expression error, already labelled
                raise
            raise NodeError(f"{label} ({op}): {exc.message}") from None

    return predicate


def compare(op: str, left: Any, right: Any = None) -> bool:
    """Apply operator ``op`` to two evaluated values; raises :class:`NodeError` when it cannot."""
    test = _TESTS.get(op)
    if test is None:
        raise NodeError(f"unknown operator {op!r} (known: {', '.join(OPS)})")
    return test(left, right)


# --- operators ---------------------------------------------------------------------------

_NUMBER = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")
_INTEGER = re.compile(r"\s*[-+]?\d+\s*")


_NUMBER_TYPES = (int, float)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_KINDS: dict[type, str] = {str: "text", list: "list", dict: "object"}


def _kind(value: Any) -> str:
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    return _KINDS.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=1024)
def _number(text: str) -> int | float | None:
    """The number a numeric string holds, else ``None`` (cached: constants repeat)."""
    if _INTEGER.fullmatch(text):
        return int(text)
    return float(text) if _NUMBER.fullmatch(text) else None


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Numeric strings against numbers become numbers; ISO strings against dates, dates."""
    left_type, right_type = type(left), type(right)
    if left_type is right_type:
        return left, right
    if right_type in _NUMBER_TYPES and left_type is str:
        number = _number(left)
        return (left if number is None else number), right
    if left_type in _NUMBER_TYPES and right_type is str:
        number = _number(right)
        return left, (right if number is None else number)
    if isinstance(left, dt.date) and right_type is str:
        return left, _parse_date(right, left)
    if isinstance(right, dt.date) and left_type is str:
        return _parse_date(left, right), right
    return left, right


def _parse_date(text: str, like: dt.date) -> Any:
    try:
        if isinstance(like, dt.datetime):
            return dt.datetime.fromisoformat(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        return text  # compares as text, which ordering then reports


def _eq(left: Any, right: Any) -> bool:
    if type(left) is not type(right):
        left, right = _coerce(left, right)
        if isinstance(left, bool) or isinstance(right, bool):
            return type(left) is type(right) and left == right
    return bool(left == right)


def _ordering(compare: Callable[[Any, Any], bool], name: str) -> Callable[[Any, Any], bool]:
    def test(left: Any, right: Any) -> bool:
        if left is None or right is None or left is MISSING or right is MISSING:
            return False
        if type(left) is not type(right):
            left, right = _coerce(left, right)
            if isinstance(left, bool) != isinstance(right, bool):
                raise _incomparable(name, left, right)
        try:
            return compare(left, right)
        except TypeError:
            raise _incomparable(name, left, right) from None

    return test


def _incomparable(name: str, left: Any, right: Any) -> NodeError:
    return NodeError(
        f"cannot order {_kind(left)} {_show(left)} against {_kind(right)} {_show(right)} "
        f"with {name!r}"
    )


def _text(value: Any, side: str, op: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(value)
    raise NodeError(f"{op!r} needs text on the {side}, got {_kind(value)} {_show(value)}")


def _contains(left: Any, right: Any) -> bool:
    if left is None or left is MISSING:
        return False
    if isinstance(left, list):
        return any(_eq(element, right) for element in left)
    if isinstance(left, dict):
        return _text(right, "right", "contains") in left
    if isinstance(left, str) or _is_number(left):
        return _text(right, "right", "contains") in _text(left, "left", "contains")
    raise NodeError(
        f"'contains' needs text, a list or an object on the left, got {_kind(left)} {_show(left)}"
    )


def _in(left: Any, right: Any) -> bool:
    if right is None or right is MISSING:
        return False
    if isinstance(right, list):
        return any(_eq(element, left) for element in right)
    if isinstance(right, dict):
        return _text(left, "left", "in") in right
    if isinstance(right, str):
        return left is not None and _text(left, "left", "in") in right
    raise NodeError(
        f"'in' needs a list, text or an object on the right, got {_kind(right)} {_show(right)}"
    )


def _text_test(name: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def run(left: Any, right: Any) -> bool:
        if left is None or left is MISSING:
            return False
        return test(_text(left, "left", name), _text(right, "right", name))

    return run


def _matches(left: Any, right: Any) -> bool:
    if left is None or left is MISSING:
        return False
    subject = _text(left, "left", "matches")
    if not isinstance(right, str):
        raise NodeError(f"'matches' needs a regex text on the right, got {_kind(right)}")
    if len(subject) > MAX_SUBJECT:
        raise NodeError(
            f"'matches' checks text of at most {MAX_SUBJECT} characters, got {len(subject)}"
        )
    return _regex(right).search(subject) is not None


def _empty(value: Any) -> bool:
    return value is None or value is MISSING or value in ("", [], {})


def _is_text_bool(value: Any, word: str) -> bool:
    return isinstance(value, str) and value.strip().lower() == word


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq,
    "ne": lambda left, right: not _eq(left, right),
    "gt": _ordering(operator.gt, "gt"),
    "gte": _ordering(operator.ge, "gte"),
    "lt": _ordering(operator.lt, "lt"),
    "lte": _ordering(operator.le, "lte"),
    "contains": _contains,
    "not_contains": lambda left, right: not _contains(left, right),
    "starts_with": _text_test("starts_with", str.startswith),
    "ends_with": _text_test("ends_with", str.endswith),
    "matches": _matches,
    "in": _in,
    "exists": lambda left, _: left is not None and left is not MISSING,
    "not_exists": lambda left, _: left is None or left is MISSING,
    "empty": lambda left, _: _empty(left),
    "not_empty": lambda left, _: not _empty(left),
    "is_true": lambda left, _: left is True or _is_text_bool(left, "true"),
    "is_false": lambda left, _: left is False or _is_text_bool(left, "false"),
    "is_number": lambda left, _: _is_number(left),
    "is_string": lambda left, _: isinstance(left, str),
    "is_list": lambda left, _: isinstance(left, list),
    "is_object": lambda left, _: isinstance(left, dict),
}


# --- regexes -----------------------------------------------------------------------------

# the parser behind `re`; typeshed does not describe it, so it is typed loosely
_sre: Any = importlib.import_module("re._parser")
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT"})


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    """Compile a user's pattern once, refusing the ones that can backtrack for ages."""
    if len(pattern) > MAX_PATTERN:
        raise NodeError(f"the regex is longer than {MAX_PATTERN} characters")
    try:
        parsed = _sre.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise NodeError(f"bad regex {_show(pattern)}: {exc}") from None
    if _nested_repeat(parsed.data):
        raise NodeError(
            f"the regex {_show(pattern)} repeats a group of repeats (like `(a+)+`), which can "
            "take forever on some text; use an atomic group `(?>...)` or a possessive "
            "quantifier (`++`, `*+`) for the inner or outer repeat"
        )
    return compiled


def _nested_repeat(items: Any) -> bool:
    """Whether some repeat's body is only variable repeats plus optional parts."""
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            _low, high, body = av
            if (high > 1 and _loose(body)) or _nested_repeat(body.data):
                return True
        elif name == "SUBPATTERN":
            if _nested_repeat(av[3].data):
                return True
        elif name == "BRANCH":
            if any(_nested_repeat(branch.data) for branch in av[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT") and _nested_repeat(av[1].data):
            return True
        # POSSESSIVE_REPEAT and ATOMIC_GROUP never backtrack into themselves: safe
    return False


def _loose(body: Any) -> bool:
    """Whether a sequence can vary in length and has no required part of fixed text."""
    variable = False
    for item in body.data:
        op, av = item
        name = str(op)
        if (
            (name in _REPEATS and av[1] > av[0])
            or (name == "SUBPATTERN" and _loose(av[3]))
            or (name == "BRANCH" and any(_loose(branch) for branch in av[1]))
        ):
            variable = True
        elif _sre.SubPattern(body.state, [item]).getwidth()[0] > 0:
            return False
    return variable
