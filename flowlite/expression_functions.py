"""The run-time side of expressions: every value, function, method and operator they can touch.

Nothing an expression does reaches Python through ``getattr``. Functions, methods and readable
attributes are looked up in the tables below, keyed by the exact type of a value (or the allowed
base class it derives from), so a name that is not listed cannot be reached whatever the value
is. Operators check the types of their operands against the same short list of value types.

Each evaluation gets a :class:`Scope` holding two budgets: ``steps`` counts comprehension
iterations and ``work`` counts the characters and elements that functions, methods and operators
read or produce. Anything that could grow a value (``*``, ``+``, ``join``, ``replace``, padding,
``range``, serialising) charges its size *before* building it, so ``'a' * 10**10`` fails at once
instead of exhausting memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath.exceptions import JMESPathError

from flowlite.errors import ExpressionError
from flowlite.sdk import MISSING, get_field

if TYPE_CHECKING:
    from flowlite.expressions import EvalContext

__all__ = [
    "ATTRIBUTES",
    "ELEMENT_COST",
    "FUNCTIONS",
    "MAX_DATA_DEPTH",
    "MAX_INT_BITS",
    "MAX_RANGE",
    "MAX_STEPS",
    "MAX_WORK",
    "METHODS",
    "METHOD_NAMES",
    "NUMBER_TYPES",
    "FunctionSpec",
    "NodeView",
    "Scope",
    "add",
    "compare",
    "contains",
    "cost",
    "find_method",
    "finish",
    "iterate",
    "kind",
    "multiply",
    "operator_for",
    "read_attribute",
    "subscript",
    "take_slice",
    "to_json_value",
    "to_text",
    "unary_for",
    "zone",
]

#: integers may not grow past this many bits through ``*``, ``**`` or ``<<``
MAX_INT_BITS = 4096
#: ``range()`` may produce at most this many numbers
MAX_RANGE = 10_000
#: comprehension iterations per evaluation
MAX_STEPS = 100_000
#: what functions, methods and operators may read or produce per evaluation, in characters
#: (about bytes); a list element counts as ELEMENT_COST characters, the size of a reference
MAX_WORK = 50_000_000
ELEMENT_COST = 8
#: nesting of values that are serialised or converted
MAX_DATA_DEPTH = 200
_MAX_FORMAT_LENGTH = 200
_MAX_ROUND_DIGITS = 300

NUMBER_TYPES: frozenset[type] = frozenset({int, float, bool})
_INT_TYPES: frozenset[type] = frozenset({int, bool})
_SEQUENCES: frozenset[type] = frozenset({list, tuple})
_JSON_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None)})
# Base classes a value may derive from; anything else has no methods or attributes at all.
_BASES: tuple[type, ...] = (str, list, tuple, dict, dt.datetime, dt.date, dt.timedelta)


class Scope:
    """What one evaluation sees: the context, the current item, loop variables and budgets."""

    __slots__ = ("ctx", "index", "json", "names", "steps", "work")

    ctx: EvalContext
    index: int
    json: Any
    names: dict[str, Any] | None
    steps: int
    work: int

    def __init__(self, ctx: EvalContext, index: int) -> None:
        self.open(ctx, index)

    def open(self, ctx: EvalContext, index: int) -> None:
        """Start an evaluation for input item ``index`` (scopes are reused between them)."""
        self.ctx = ctx
        self.index = index
        items = ctx.items
        self.json = items[index]["json"] if 0 <= index < len(items) else {}
        self.names = None
        self.steps = 0
        self.work = 0

    def spend(self, amount: int) -> None:
        """Charge ``amount`` (characters, see MAX_WORK) to this evaluation's work budget."""
        self.work += amount
        if self.work > MAX_WORK:
            raise ExpressionError(
                f"the expression handles too much data (over {MAX_WORK // 1_000_000} MB)"
            )

    def step(self) -> None:
        """Count one loop iteration."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ExpressionError(f"the expression loops too often (over {MAX_STEPS:,} steps)")


class NodeView:
    """What ``node("Name")`` returns: read-only access to that node's latest output."""

    __slots__ = ("_index", "_items", "name")

    def __init__(self, name: str, items: list[dict[str, Any]] | None, index: int) -> None:
        self.name = name
        self._items = items
        self._index = index

    @property
    def ran(self) -> bool:
        return self._items is not None

    def paired_json(self) -> Any:
        items = self._items
        if not items:
            return None
        position = self._index if 0 <= self._index < len(items) else 0
        return items[position].get("json")

    def all_json(self, scope: Scope) -> list[Any]:
        items = self._items or []
        scope.spend(ELEMENT_COST * len(items))
        return [it.get("json") for it in items]

    def first(self) -> Any:
        return self._items[0].get("json") if self._items else None

    def last(self) -> Any:
        return self._items[-1].get("json") if self._items else None

    def __repr__(self) -> str:
        return f"node({self.name!r})"


def cost(value: Any) -> int:
    """What reading or copying ``value`` charges: its characters, or ELEMENT_COST per element."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple | dict):
        return ELEMENT_COST * len(value)
    return 1


# --- values ---------------------------------------------------------------------------------

_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "text",
    list: "list",
    tuple: "list",
    dict: "object",
    dt.datetime: "datetime",
    dt.date: "date",
    dt.timedelta: "timedelta",
    NodeView: "node",
}


def kind(value: Any) -> str:
    """A user-facing name for the type of ``value``."""
    name = _KINDS.get(type(value))
    if name is None:
        base = _base_type(value)
        name = _KINDS.get(base, "value") if base is not None else "value"
    return name


def _base_type(value: Any) -> type | None:
    for base in _BASES:
        if isinstance(value, base):
            return base
    return None


def _node_view_error(view: NodeView) -> ExpressionError:
    return ExpressionError(
        f"{view!r} is a node, not a value: use .json, .items, .first(), .last() or .all()"
    )


def to_text(scope: Scope, value: Any) -> str:
    """How a value reads inside a larger string: ``None`` is empty, containers are JSON."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return str(value)
    if t is dt.datetime or t is dt.date:
        return value.isoformat()  # type: ignore[no-any-return]
    if t is dt.timedelta:
        return str(value.total_seconds())
    if t is NodeView:
        raise _node_view_error(value)
    return _dumps(scope, value, None)


def _dumps(scope: Scope, value: Any, indent: int | None) -> str:
    # The size is measured first: a short expression can build a list holding the same large
    # value many times, which is small in memory but huge once serialised.
    scope.spend(_json_size(value, MAX_WORK - scope.work, 0))
    return json.dumps(value, ensure_ascii=False, default=_json_default, indent=indent)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, NodeView):
        raise _node_view_error(value)
    raise ExpressionError(f"a {type(value).__name__} value cannot be converted to JSON")


def _json_size(value: Any, limit: int, depth: int, seen: dict[int, int] | None = None) -> int:
    """About how many characters ``value`` takes as JSON; fails past ``limit``.

    Sizes of containers are remembered by identity, so a value repeated many times
    (``[json] * 100000``) is measured once and counted every time.
    """
    t = type(value)
    if t is str:
        return len(value) + 2
    if t is not dict and t is not list and t is not tuple:
        return 8
    if depth > MAX_DATA_DEPTH:
        raise ExpressionError(f"the value is nested more than {MAX_DATA_DEPTH} levels deep")
    if seen is None:
        seen = {}
    known = seen.get(id(value))
    if known is not None:
        return known
    size = 2
    if t is dict:
        for key, item in value.items():
            size += _json_size(key, limit, depth + 1, seen)
            size += _json_size(item, limit, depth + 1, seen) + 2
            if size > limit:
                break
    else:
        for item in value:
            size += _json_size(item, limit, depth + 1, seen) + 1
            if size > limit:
                break
    if size > limit:
        raise ExpressionError(
            f"the value is too large to convert to text (over {MAX_WORK:,} characters)"
        )
    seen[id(value)] = size
    return size


def finish(scope: Scope, value: Any) -> Any:
    """A computed result made JSON-compatible, refused when its JSON would be too large.

    The size matters even for a typed result: nodes put it into items, which end up serialised
    in the execution record, and a few nested ``[x, x]`` make a value whose JSON is huge.
    """
    scope.spend(_json_size(value, MAX_WORK - scope.work, 0))
    return to_json_value(value)


_KEY_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def to_json_value(value: Any, depth: int = 0, seen: dict[int, Any] | None = None) -> Any:
    """``value`` with tuples as lists, dates as ISO text and timedeltas as seconds.

    Returns the same object when nothing needs converting, so data passes through uncopied;
    a container that occurs many times is converted once.
    """
    t = type(value)
    if t in _JSON_SCALARS:
        return value
    if t is dt.datetime or t is dt.date:
        return value.isoformat()
    if t is dt.timedelta:
        return value.total_seconds()
    if t is NodeView:
        raise _node_view_error(value)
    if t is not list and t is not tuple and t is not dict:
        return value
    if depth > MAX_DATA_DEPTH:
        raise ExpressionError(f"the value is nested more than {MAX_DATA_DEPTH} levels deep")
    if seen is None:
        seen = {}
    done = seen.get(id(value), _NOT_SEEN)
    if done is not _NOT_SEEN:
        return done
    result: Any
    if t is dict:
        result = {}
        changed = False
        for key, item in value.items():
            if type(key) not in _KEY_TYPES:
                raise ExpressionError(f"object keys must be text or numbers, got {kind(key)}")
            converted = to_json_value(item, depth + 1, seen)
            changed = changed or converted is not item
            result[key] = converted
        if not changed:
            result = value
    else:
        result = [to_json_value(item, depth + 1, seen) for item in value]
        if t is list and all(a is b for a, b in zip(result, value, strict=True)):
            result = value
    seen[id(value)] = result
    return result


_NOT_SEEN: Any = object()


def _text_arg(value: Any, what: str) -> str:
    if type(value) is not str:
        raise ExpressionError(f"{what} needs text, got {kind(value)}")
    return str(value)


def _int_arg(value: Any, what: str) -> int:
    if type(value) not in _INT_TYPES:
        raise ExpressionError(f"{what} needs a whole number, got {kind(value)}")
    return int(value)


def _as_list(scope: Scope, value: Any, what: str) -> list[Any]:
    t = type(value)
    if t is list or t is tuple or t is str or t is dict:
        scope.spend(cost(value))
        return list(value)
    base = _base_type(value)
    if base in (list, tuple, str, dict):
        scope.spend(cost(value))
        return list(value)
    raise ExpressionError(f"{what} needs a list, text or object, got {kind(value)}")


def iterate(scope: Scope, value: Any) -> Iterable[Any]:
    """What a comprehension may loop over: lists, text (characters) and objects (keys)."""
    t = type(value)
    if t is list or t is tuple or t is str or t is dict:
        return value  # type: ignore[no-any-return]
    if _base_type(value) in (list, tuple, str, dict):
        return value  # type: ignore[no-any-return]
    raise ExpressionError(f"cannot loop over {kind(value)}")


# --- reading attributes and subscripts --------------------------------------------------------

ATTRIBUTES: dict[type, dict[str, Callable[[Any], Any]]] = {
    dt.datetime: {
        "year": lambda d: d.year,
        "month": lambda d: d.month,
        "day": lambda d: d.day,
        "hour": lambda d: d.hour,
        "minute": lambda d: d.minute,
        "second": lambda d: d.second,
        "microsecond": lambda d: d.microsecond,
    },
    dt.date: {
        "year": lambda d: d.year,
        "month": lambda d: d.month,
        "day": lambda d: d.day,
    },
    dt.timedelta: {
        "days": lambda d: d.days,
        "seconds": lambda d: d.seconds,
        "microseconds": lambda d: d.microseconds,
    },
    NodeView: {
        "json": lambda v: v.paired_json(),
        "ran": lambda v: v.ran,
    },
}


def read_attribute(scope: Scope, value: Any, name: str, where: str) -> Any:
    """``value.name``: a key of an object (``None`` when missing), else a listed attribute."""
    if isinstance(value, dict):
        return value.get(name)
    if value is None:
        raise ExpressionError(f"cannot read {name!r} of {where} (null)")
    t = type(value)
    if t is NodeView and name == "items":
        return value.all_json(scope)
    table = ATTRIBUTES.get(t)
    if table is None:
        base = _base_type(value)
        table = ATTRIBUTES.get(base) if base is not None else None
    reader = table.get(name) if table is not None else None
    if reader is not None:
        return reader(value)
    if name in METHOD_NAMES and _find_method(value, name) is not None:
        raise ExpressionError(f"{name!r} is a method of {kind(value)}: call it, {name}(…)")
    raise ExpressionError(f"cannot read {name!r} of {where} ({kind(value)})")


def subscript(value: Any, key: Any, where: str) -> Any:
    """``value[key]``: a missing object key or an index out of range gives ``None``."""
    t = type(value)
    if t is dict or (t is not str and isinstance(value, dict)):
        return value.get(key)
    if t is list or t is tuple or t is str or _base_type(value) in (list, tuple, str):
        if type(key) is not int:
            raise ExpressionError(
                f"{where} ({kind(value)}) takes whole-number positions, got {kind(key)}"
            )
        try:
            return value[key]
        except IndexError:
            return None
    if value is None:
        raise ExpressionError(f"cannot read [{key!r:.60}] of {where} (null)")
    raise ExpressionError(f"cannot read [{key!r:.60}] of {where} ({kind(value)})")


def take_slice(scope: Scope, value: Any, lower: Any, upper: Any, step: Any, where: str) -> Any:
    """``value[lower:upper:step]`` on a list or text."""
    for bound in (lower, upper, step):
        if bound is not None and type(bound) is not int:
            raise ExpressionError(f"slice positions must be whole numbers, got {kind(bound)}")
    if step == 0:
        raise ExpressionError("slice step cannot be zero")
    if type(value) in (list, tuple, str) or _base_type(value) in (list, tuple, str):
        scope.spend(cost(value))
        return value[lower:upper:step]
    raise ExpressionError(f"cannot slice {where} ({kind(value)})")


# --- operators --------------------------------------------------------------------------------


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise ExpressionError(f"the number would be too large (over {MAX_INT_BITS} bits)")


def _numbers(a: Any, b: Any) -> bool:
    return type(a) in NUMBER_TYPES and type(b) in NUMBER_TYPES


def _operand_error(verb: str, a: Any, b: Any) -> ExpressionError:
    return ExpressionError(f"cannot {verb} {kind(a)} and {kind(b)}")


def add(scope: Scope, a: Any, b: Any) -> Any:
    """``a + b``: numbers, text + text, list + list, dates and timedeltas."""
    ta, tb = type(a), type(b)
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        return a + b
    if ta is str and tb is str:
        scope.spend(len(a) + len(b))
        return a + b
    if ta in _SEQUENCES and tb in _SEQUENCES:
        scope.spend(ELEMENT_COST * (len(a) + len(b)))
        return [*a, *b] if ta is not tb else a + b
    if tb is dt.timedelta and ta in (dt.datetime, dt.date, dt.timedelta):
        return a + b
    if ta is dt.timedelta and tb in (dt.datetime, dt.date):
        return a + b
    if (ta is str) != (tb is str):
        raise ExpressionError(f"cannot add {kind(a)} and {kind(b)}: convert with str() first")
    raise _operand_error("add", a, b)


def _subtract(scope: Scope, a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        return a - b
    if ta in (dt.datetime, dt.date) and (tb is ta or tb is dt.timedelta):
        return a - b
    if ta is dt.timedelta and tb is dt.timedelta:
        return a - b
    raise _operand_error("subtract", a, b)


def multiply(scope: Scope, a: Any, b: Any) -> Any:
    """``a * b``: numbers (bounded), and text or lists repeated (size checked first)."""
    ta, tb = type(a), type(b)
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        if ta is int and tb is int:
            _check_bits(a.bit_length() + b.bit_length())
        return a * b
    if tb in _INT_TYPES and (ta is str or ta in _SEQUENCES):
        scope.spend(cost(a) * max(b, 0))
        return a * b
    if ta in _INT_TYPES and (tb is str or tb in _SEQUENCES):
        scope.spend(cost(b) * max(a, 0))
        return a * b
    if ta is dt.timedelta and tb in NUMBER_TYPES:
        return a * b
    if tb is dt.timedelta and ta in NUMBER_TYPES:
        return a * b
    raise _operand_error("multiply", a, b)


def _divide(scope: Scope, a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        return a / b
    if ta is dt.timedelta and (tb in NUMBER_TYPES or tb is dt.timedelta):
        return a / b
    raise _operand_error("divide", a, b)


def _floor_divide(scope: Scope, a: Any, b: Any) -> Any:
    if _numbers(a, b):
        return a // b
    raise _operand_error("divide", a, b)


def _modulo(scope: Scope, a: Any, b: Any) -> Any:
    # `%` on text is printf-style formatting, which can reach attributes of its arguments.
    if _numbers(a, b):
        return a % b
    if type(a) is str:
        raise ExpressionError("'%' works on numbers only; text formatting with '%' is not allowed")
    raise _operand_error("take the remainder of", a, b)


def _power(scope: Scope, a: Any, b: Any) -> Any:
    if not _numbers(a, b):
        raise _operand_error("raise", a, b)
    if type(a) in _INT_TYPES and type(b) in _INT_TYPES and b > 0 and abs(a) > 1:
        _check_bits(a.bit_length() * b)
    result = a**b
    if type(result) is complex:
        raise ExpressionError("the result is not a real number")
    return result


def _integers(verb: str, a: Any, b: Any) -> None:
    if type(a) not in _INT_TYPES or type(b) not in _INT_TYPES:
        raise ExpressionError(f"cannot {verb} {kind(a)} and {kind(b)}: whole numbers only")


def _left_shift(scope: Scope, a: Any, b: Any) -> Any:
    _integers("shift", a, b)
    if b > 0:
        _check_bits(a.bit_length() + b)
    return a << b


def _right_shift(scope: Scope, a: Any, b: Any) -> Any:
    _integers("shift", a, b)
    return a >> b


def _bit_and(scope: Scope, a: Any, b: Any) -> Any:
    _integers("combine", a, b)
    return a & b


def _bit_or(scope: Scope, a: Any, b: Any) -> Any:
    _integers("combine", a, b)
    return a | b


def _bit_xor(scope: Scope, a: Any, b: Any) -> Any:
    _integers("combine", a, b)
    return a ^ b


_OPERATORS: dict[str, Callable[[Scope, Any, Any], Any]] = {
    "Add": add,
    "Sub": _subtract,
    "Mult": multiply,
    "Div": _divide,
    "FloorDiv": _floor_divide,
    "Mod": _modulo,
    "Pow": _power,
    "LShift": _left_shift,
    "RShift": _right_shift,
    "BitAnd": _bit_and,
    "BitOr": _bit_or,
    "BitXor": _bit_xor,
}


def operator_for(name: str) -> Callable[[Scope, Any, Any], Any] | None:
    """The binary operator named like its ``ast`` class (``"Add"``), if allowed."""
    return _OPERATORS.get(name)


def _negate(value: Any) -> Any:
    if type(value) in NUMBER_TYPES or type(value) is dt.timedelta:
        return -value
    raise ExpressionError(f"cannot negate {kind(value)}")


def _plus(value: Any) -> Any:
    if type(value) in NUMBER_TYPES or type(value) is dt.timedelta:
        return +value
    raise ExpressionError(f"cannot apply unary + to {kind(value)}")


def _invert(value: Any) -> Any:
    if type(value) in _INT_TYPES:
        return ~value
    raise ExpressionError(f"cannot apply ~ to {kind(value)}: whole numbers only")


_UNARY: dict[str, Callable[[Any], Any]] = {
    "USub": _negate,
    "UAdd": _plus,
    "Invert": _invert,
    "Not": lambda value: not value,
}


def unary_for(name: str) -> Callable[[Any], Any] | None:
    """The unary operator named like its ``ast`` class (``"USub"``), if allowed."""
    return _UNARY.get(name)


def _charge_comparison(scope: Scope, a: Any, b: Any) -> None:
    # Comparing containers walks them; inside a loop that adds up.
    for value in (a, b):
        if type(value) in (str, list, tuple, dict):
            scope.spend(cost(value))


def contains(scope: Scope, item: Any, container: Any) -> bool:
    """``item in container`` for text, lists and objects (keys)."""
    t = type(container)
    if t is dict or (t is not str and isinstance(container, dict)):
        return item in container
    if t is str or isinstance(container, str):
        if type(item) is not str:
            raise ExpressionError(f"'in' on text needs text on the left, got {kind(item)}")
        scope.spend(cost(container))
        return item in container
    if t in _SEQUENCES or isinstance(container, list | tuple):
        scope.spend(cost(container))
        return item in container
    raise ExpressionError(f"cannot use 'in' with {kind(container)}")


def _ordered(op: Callable[[Any, Any], bool], symbol: str) -> Callable[[Scope, Any, Any], bool]:
    def compare_values(scope: Scope, a: Any, b: Any) -> bool:
        _charge_comparison(scope, a, b)
        try:
            return op(a, b)
        except TypeError:
            raise ExpressionError(f"cannot compare {kind(a)} {symbol} {kind(b)}") from None

    return compare_values


def _equal(scope: Scope, a: Any, b: Any) -> bool:
    _charge_comparison(scope, a, b)
    return bool(a == b)


def _not_equal(scope: Scope, a: Any, b: Any) -> bool:
    _charge_comparison(scope, a, b)
    return bool(a != b)


_COMPARISONS: dict[str, Callable[[Scope, Any, Any], bool]] = {
    "Eq": _equal,
    "NotEq": _not_equal,
    "Lt": _ordered(lambda a, b: a < b, "<"),
    "LtE": _ordered(lambda a, b: a <= b, "<="),
    "Gt": _ordered(lambda a, b: a > b, ">"),
    "GtE": _ordered(lambda a, b: a >= b, ">="),
    "In": contains,
    "NotIn": lambda scope, a, b: not contains(scope, a, b),
    "Is": lambda scope, a, b: a is b,
    "IsNot": lambda scope, a, b: a is not b,
}


def compare(name: str) -> Callable[[Scope, Any, Any], bool] | None:
    """The comparison named like its ``ast`` class (``"Lt"``), if allowed."""
    return _COMPARISONS.get(name)


# --- methods ----------------------------------------------------------------------------------

Method = Callable[..., Any]


def _scanning(method: Callable[..., Any]) -> Method:
    """A text method whose cost grows with the length of the text."""

    def call(scope: Scope, text: str, *args: Any, **kwargs: Any) -> Any:
        scope.spend(len(text))
        return method(text, *args, **kwargs)

    return call


def _join(scope: Scope, separator: str, values: Any) -> str:
    parts = _as_list(scope, values, "join()")
    total = len(separator) * max(len(parts) - 1, 0)
    for part in parts:
        if type(part) is not str:
            raise ExpressionError(f"join() needs a list of text, found {kind(part)}")
        total += len(part)
    scope.spend(total)
    return separator.join(parts)


def _replace(scope: Scope, text: str, old: Any, new: Any, count: Any = -1) -> str:
    old = _text_arg(old, "replace()")
    new = _text_arg(new, "replace()")
    count = _int_arg(count, "replace()")
    found = text.count(old) if old else len(text) + 1
    if count >= 0:
        found = min(found, count)
    scope.spend(len(text) + max(found * (len(new) - len(old)), 0))
    return text.replace(old, new, count)


def _padding(method: Callable[..., str]) -> Method:
    def call(scope: Scope, text: str, width: Any, *args: Any) -> str:
        scope.spend(max(_int_arg(width, "padding"), len(text)))
        return method(text, width, *args)

    return call


def _list_copy(method: Callable[[Any], Iterable[Any]]) -> Method:
    def call(scope: Scope, value: dict[Any, Any]) -> list[Any]:
        scope.spend(cost(value))
        return list(method(value))

    return call


def _dict_get(scope: Scope, value: dict[Any, Any], key: Any, default: Any = None) -> Any:
    return value.get(key, default)


_STRFTIME_DIRECTIVE = re.compile(r"%(?:-?[A-Za-z]|%)")


def _strftime(scope: Scope, value: dt.date, pattern: Any) -> str:
    # Widths and flags such as `%_99999999d` would let the C library allocate at will.
    pattern = _text_arg(pattern, "strftime()")
    if len(pattern) > _MAX_FORMAT_LENGTH or "%" in _STRFTIME_DIRECTIVE.sub("", pattern):
        raise ExpressionError(
            f"strftime() takes plain %-directives such as '%Y-%m-%d', got {pattern!r:.60}"
        )
    return value.strftime(pattern)


def _isoformat(scope: Scope, value: dt.date, *args: Any, **kwargs: Any) -> str:
    return value.isoformat(*args, **kwargs)


def _replace_date(allowed: frozenset[str]) -> Method:
    def call(scope: Scope, value: dt.date, **fields: Any) -> dt.date:
        for name, number in fields.items():
            if name not in allowed:
                raise ExpressionError(f"replace() takes {', '.join(sorted(allowed))}, not {name!r}")
            _int_arg(number, f"replace({name}=…)")
        return value.replace(**fields)

    return call


_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")


def zone(name: Any) -> dt.tzinfo:
    """An IANA time zone by name; only well-formed names reach the zone database."""
    name = _text_arg(name, "a time zone")
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise ExpressionError(f"{name!r} is not a time zone name")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"unknown time zone {name!r}") from None


def _astimezone(scope: Scope, value: dt.datetime, name: Any = None) -> dt.datetime:
    target = scope.ctx.timezone if name is None else zone(name)
    # A naive datetime means the workflow's timezone, never the server's.
    return _aware(scope, value).astimezone(target)


def _timestamp(scope: Scope, value: dt.datetime) -> float:
    return _aware(scope, value).timestamp()


def _plain(method: Callable[..., Any]) -> Method:
    def call(scope: Scope, value: Any, *args: Any, **kwargs: Any) -> Any:
        return method(value, *args, **kwargs)

    return call


def _sequence_search(method: Callable[..., Any]) -> Method:
    def call(scope: Scope, value: Any, *args: Any) -> Any:
        scope.spend(cost(value))
        return method(value, *args)

    return call


def _list_index(scope: Scope, value: Any, item: Any, *args: Any) -> int:
    scope.spend(cost(value))
    try:
        return int(value.index(item, *args))
    except ValueError:
        raise ExpressionError(f"{item!r:.60} is not in the list") from None


_STR_METHODS: dict[str, Method] = {
    "upper": _scanning(str.upper),
    "lower": _scanning(str.lower),
    "strip": _scanning(str.strip),
    "lstrip": _scanning(str.lstrip),
    "rstrip": _scanning(str.rstrip),
    "split": _scanning(str.split),
    "rsplit": _scanning(str.rsplit),
    "splitlines": _scanning(str.splitlines),
    "title": _scanning(str.title),
    "capitalize": _scanning(str.capitalize),
    "casefold": _scanning(str.casefold),
    "swapcase": _scanning(str.swapcase),
    "find": _scanning(str.find),
    "rfind": _scanning(str.rfind),
    "count": _scanning(str.count),
    "isdigit": _scanning(str.isdigit),
    "isalpha": _scanning(str.isalpha),
    "isalnum": _scanning(str.isalnum),
    "isspace": _scanning(str.isspace),
    "isnumeric": _scanning(str.isnumeric),
    "isdecimal": _scanning(str.isdecimal),
    "islower": _scanning(str.islower),
    "isupper": _scanning(str.isupper),
    "istitle": _scanning(str.istitle),
    "partition": _scanning(str.partition),
    "rpartition": _scanning(str.rpartition),
    "removeprefix": _scanning(str.removeprefix),
    "removesuffix": _scanning(str.removesuffix),
    "startswith": _scanning(str.startswith),
    "endswith": _scanning(str.endswith),
}
_STR_METHODS.update(
    join=_join,
    replace=_replace,
    zfill=_padding(str.zfill),
    ljust=_padding(str.ljust),
    rjust=_padding(str.rjust),
    center=_padding(str.center),
)

_SEQUENCE_METHODS: dict[str, Method] = {
    "index": _list_index,
    "count": _sequence_search(lambda value, *args: value.count(*args)),
}

_DATE_FIELDS = frozenset({"year", "month", "day"})
_TIME_FIELDS = _DATE_FIELDS | {"hour", "minute", "second", "microsecond"}

METHODS: dict[type, dict[str, Method]] = {
    str: _STR_METHODS,
    list: _SEQUENCE_METHODS,
    tuple: _SEQUENCE_METHODS,
    dict: {
        "get": _dict_get,
        "keys": _list_copy(dict.keys),
        "values": _list_copy(dict.values),
        "items": _list_copy(dict.items),
    },
    dt.datetime: {
        "isoformat": _isoformat,
        "strftime": _strftime,
        "date": _plain(dt.datetime.date),
        "weekday": _plain(dt.datetime.weekday),
        "isoweekday": _plain(dt.datetime.isoweekday),
        "timestamp": _timestamp,
        "tzname": _plain(dt.datetime.tzname),
        "replace": _replace_date(_TIME_FIELDS),
        "astimezone": _astimezone,
    },
    dt.date: {
        "isoformat": _isoformat,
        "strftime": _strftime,
        "weekday": _plain(dt.date.weekday),
        "isoweekday": _plain(dt.date.isoweekday),
        "replace": _replace_date(_DATE_FIELDS),
    },
    dt.timedelta: {"total_seconds": _plain(dt.timedelta.total_seconds)},
    NodeView: {
        "first": lambda scope, view: view.first(),
        "last": lambda scope, view: view.last(),
        "all": lambda scope, view: view.all_json(scope),
    },
}

#: every method name of every type: a call of any other name is refused when compiling
METHOD_NAMES: frozenset[str] = frozenset(name for table in METHODS.values() for name in table)


def _named(table: dict[str, Method]) -> None:
    # Python names the function in a TypeError about its arguments ("zfill() missing 1
    # required positional argument"); make that the method's name, not a wrapper's.
    for name, method in table.items():
        method.__qualname__ = name


for _table in METHODS.values():
    _named(_table)

_METHOD_HINTS = {
    ("list", "join"): "use ', '.join(list)",
    ("object", "pop"): "objects cannot be changed",
}


def _find_method(value: Any, name: str) -> Method | None:
    table = METHODS.get(type(value))
    if table is None:
        base = _base_type(value)
        if base is None:
            return None
        table = METHODS[base]
    return table.get(name)


def find_method(value: Any, name: str, where: str) -> Method:
    """The method ``name`` of ``value`` from the allow-list, or an error naming what was called."""
    method = _find_method(value, name)
    if method is None:
        hint = _METHOD_HINTS.get((kind(value), name))
        suffix = f"; {hint}" if hint else ""
        raise ExpressionError(f"{where} ({kind(value)}) has no method {name!r}{suffix}")
    return method


# --- functions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """A function expressions may call, with the arguments it accepts."""

    call: Callable[..., Any]
    min_args: int = 0
    max_args: int = 0
    keywords: frozenset[str] = frozenset()
    #: any keyword argument goes (dict(a=1)); values are still checked by the function
    any_keywords: bool = False


def _len(scope: Scope, value: Any) -> int:
    if type(value) in (str, list, tuple, dict) or _base_type(value) in (str, list, tuple, dict):
        return len(value)
    raise ExpressionError(f"len() needs text, a list or an object, got {kind(value)}")


def _int(scope: Scope, value: Any, base: Any = None) -> int:
    if base is not None:
        return int(_text_arg(value, "int() with a base"), _int_arg(base, "int() base"))
    if type(value) is str:
        return int(value.strip())
    if type(value) in NUMBER_TYPES:
        return int(value)
    raise ExpressionError(f"int() needs text or a number, got {kind(value)}")


def _float(scope: Scope, value: Any) -> float:
    if type(value) is str or type(value) in NUMBER_TYPES:
        return float(value)
    raise ExpressionError(f"float() needs text or a number, got {kind(value)}")


def _number(value: Any, what: str) -> Any:
    if type(value) not in NUMBER_TYPES:
        raise ExpressionError(f"{what} needs a number, got {kind(value)}")
    return value


def _round(scope: Scope, value: Any, digits: Any = None) -> Any:
    value = _number(value, "round()")
    if digits is None:
        return round(value)
    digits = _int_arg(digits, "round() digits")
    if abs(digits) > _MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() takes at most {_MAX_ROUND_DIGITS} digits")
    return round(value, digits)


def _abs(scope: Scope, value: Any) -> Any:
    if type(value) is dt.timedelta:
        return abs(value)
    return abs(_number(value, "abs()"))


def _field_key(path: str) -> Callable[[Any], tuple[bool, Any]]:
    def key(value: Any) -> tuple[bool, Any]:
        found = get_field(value, path, None) if isinstance(value, dict) else None
        # Items without the field sort last instead of failing to compare with None.
        return (found is None or found is MISSING, 0 if found is None else found)

    return key


def _key_arg(key: Any, what: str) -> Callable[[Any], Any] | None:
    if key is None:
        return None
    if type(key) is not str:
        raise ExpressionError(f"{what} key must be a field name such as 'price'")
    return _field_key(key)


def _extreme(pick: Callable[..., Any], what: str) -> Callable[..., Any]:
    def call(scope: Scope, *args: Any, key: Any = None, default: Any = MISSING) -> Any:
        values = _as_list(scope, args[0], f"{what}()") if len(args) == 1 else list(args)
        if not values:
            if default is MISSING:
                raise ExpressionError(f"{what}() of an empty list (pass default=…)")
            return default
        try:
            keyfunc = _key_arg(key, f"{what}()")
            return pick(values, key=keyfunc) if keyfunc else pick(values)
        except TypeError:
            raise ExpressionError(f"{what}() cannot compare values of different types") from None

    return call


def _sum(scope: Scope, values: Any, start: Any = 0) -> Any:
    if type(start) not in NUMBER_TYPES and type(start) is not dt.timedelta:
        raise ExpressionError("sum() start must be a number or a timedelta")
    numbers = _as_list(scope, values, "sum()")
    for number in numbers:
        if type(number) not in NUMBER_TYPES and type(number) is not dt.timedelta:
            raise ExpressionError(f"sum() needs numbers, found {kind(number)}")
    return sum(numbers, start)


def _sorted(scope: Scope, values: Any, key: Any = None, reverse: Any = False) -> list[Any]:
    items = _as_list(scope, values, "sorted()")
    scope.spend(ELEMENT_COST * len(items))
    if type(reverse) is not bool:
        raise ExpressionError("sorted() reverse must be true or false")
    try:
        return sorted(items, key=_key_arg(key, "sorted()"), reverse=reverse)
    except TypeError:
        raise ExpressionError("sorted() cannot compare values of different types") from None


def _any(scope: Scope, values: Any) -> bool:
    return any(_as_list(scope, values, "any()"))


def _all(scope: Scope, values: Any) -> bool:
    return all(_as_list(scope, values, "all()"))


def _range(scope: Scope, *args: Any) -> list[int]:
    bounds = [_int_arg(arg, "range()") for arg in args]
    if len(bounds) == 3 and bounds[2] == 0:
        raise ExpressionError("range() step cannot be zero")
    numbers = range(*bounds)
    if len(numbers) > MAX_RANGE:
        raise ExpressionError(f"range() may produce at most {MAX_RANGE:,} numbers")
    scope.spend(ELEMENT_COST * len(numbers))
    return list(numbers)


def _json_dumps(scope: Scope, value: Any, indent: Any = None) -> str:
    if indent is not None and not 0 <= _int_arg(indent, "json_dumps() indent") <= 16:
        raise ExpressionError("json_dumps() indent must be between 0 and 16")
    return _dumps(scope, to_json_value(value), indent)


def _json_loads(scope: Scope, text: Any) -> Any:
    text = _text_arg(text, "json_loads()")
    scope.spend(len(text))
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ExpressionError(f"json_loads(): not valid JSON ({exc})") from None


def _aware(scope: Scope, value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=scope.ctx.timezone)
    return value


def _datetime(scope: Scope, value: Any) -> dt.datetime:
    t = type(value)
    if t is dt.datetime:
        return _aware(scope, value)
    if t is dt.date:
        return dt.datetime(value.year, value.month, value.day, tzinfo=scope.ctx.timezone)
    if t in NUMBER_TYPES:
        return dt.datetime.fromtimestamp(value, scope.ctx.timezone)
    if t is str and len(value) <= 64:
        try:
            return _aware(scope, dt.datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ExpressionError(
        f"datetime() needs an ISO 8601 date such as '2024-05-01T10:00', got {value!r:.80}"
    )


_TIMEDELTA_UNITS = frozenset({"weeks", "days", "hours", "minutes", "seconds", "milliseconds"})


def _timedelta(scope: Scope, days: Any = 0, **units: Any) -> dt.timedelta:
    units["days"] = days
    for name, amount in units.items():
        _number(amount, f"timedelta({name}=…)")
    return dt.timedelta(**units)


def _uuid4(scope: Scope) -> str:
    return str(uuid.uuid4())


def _b64encode(scope: Scope, text: Any) -> str:
    text = _text_arg(text, "b64encode()")
    scope.spend(len(text) * 2)
    return base64.b64encode(text.encode()).decode("ascii")


def _b64decode(scope: Scope, text: Any) -> str:
    text = _text_arg(text, "b64decode()")
    scope.spend(len(text))
    try:
        return base64.b64decode(text).decode()
    except UnicodeDecodeError:
        raise ExpressionError("b64decode(): the decoded data is not UTF-8 text") from None
    except ValueError as exc:
        raise ExpressionError(f"b64decode(): not valid base64 ({exc})") from None


def _digest(algorithm: Callable[[bytes], Any], what: str) -> Callable[[Scope, Any], str]:
    def call(scope: Scope, text: Any) -> str:
        text = _text_arg(text, what)
        scope.spend(len(text))
        return str(algorithm(text.encode()).hexdigest())

    return call


def _jmespath(scope: Scope, expression: Any, value: Any) -> Any:
    # jmespath only calls .get on dicts and reads JSON types; values outside that list
    # (node references) are refused up front.
    expression = _text_arg(expression, "jmespath()")
    if len(expression) > 1000:
        raise ExpressionError("jmespath() expression is too long")
    if type(value) is NodeView:
        raise _node_view_error(value)
    scope.spend(len(expression) + cost(value))
    try:
        return jmespath.search(expression, value)
    except JMESPathError as exc:
        raise ExpressionError(f"jmespath(): {exc}".splitlines()[0]) from None


def _list(scope: Scope, value: Any = ()) -> list[Any]:
    return _as_list(scope, value, "list()")


def _dict(scope: Scope, value: Any = None, **fields: Any) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    if value is not None:
        if isinstance(value, dict):
            scope.spend(cost(value))
            result.update(value)
        else:
            for pair in _as_list(scope, value, "dict()"):
                if type(pair) not in _SEQUENCES or len(pair) != 2:
                    raise ExpressionError("dict() needs an object or a list of [key, value] pairs")
                result[pair[0]] = pair[1]
    result.update(fields)
    return result


def _now(scope: Scope) -> dt.datetime:
    ctx = scope.ctx
    if ctx.now is None:
        return dt.datetime.now(ctx.timezone)
    moment = ctx.now()
    if moment.tzinfo is None:
        return moment.replace(tzinfo=ctx.timezone)
    return moment.astimezone(ctx.timezone)


def _today(scope: Scope) -> dt.date:
    return _now(scope).date()


def _node(scope: Scope, name: Any) -> NodeView:
    name = _text_arg(name, "node()")
    return NodeView(name, scope.ctx.node_output(name), scope.index)


FUNCTIONS: dict[str, FunctionSpec] = {
    "len": FunctionSpec(_len, 1, 1),
    "str": FunctionSpec(to_text, 1, 1),
    "int": FunctionSpec(_int, 1, 2),
    "float": FunctionSpec(_float, 1, 1),
    "bool": FunctionSpec(lambda scope, value=False: bool(value), 0, 1),
    "round": FunctionSpec(_round, 1, 2),
    "abs": FunctionSpec(_abs, 1, 1),
    "min": FunctionSpec(_extreme(min, "min"), 1, 100, frozenset({"key", "default"})),
    "max": FunctionSpec(_extreme(max, "max"), 1, 100, frozenset({"key", "default"})),
    "sum": FunctionSpec(_sum, 1, 2),
    "sorted": FunctionSpec(_sorted, 1, 1, frozenset({"key", "reverse"})),
    "any": FunctionSpec(_any, 1, 1),
    "all": FunctionSpec(_all, 1, 1),
    "range": FunctionSpec(_range, 1, 3),
    "json_dumps": FunctionSpec(_json_dumps, 1, 1, frozenset({"indent"})),
    "json_loads": FunctionSpec(_json_loads, 1, 1),
    "datetime": FunctionSpec(_datetime, 1, 1),
    "timedelta": FunctionSpec(_timedelta, 0, 1, _TIMEDELTA_UNITS),
    "uuid4": FunctionSpec(_uuid4),
    "b64encode": FunctionSpec(_b64encode, 1, 1),
    "b64decode": FunctionSpec(_b64decode, 1, 1),
    "md5": FunctionSpec(_digest(hashlib.md5, "md5()"), 1, 1),
    "sha256": FunctionSpec(_digest(hashlib.sha256, "sha256()"), 1, 1),
    "jmespath": FunctionSpec(_jmespath, 2, 2),
    "list": FunctionSpec(_list, 0, 1),
    "dict": FunctionSpec(_dict, 0, 1, any_keywords=True),
    "now": FunctionSpec(_now),
    "today": FunctionSpec(_today),
    "node": FunctionSpec(_node, 1, 1),
}
