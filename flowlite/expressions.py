"""Expressions (spec section 5): ``{{ … }}`` inside parameter values, compiled once into closures.

A string that is exactly one ``{{ expr }}`` evaluates to the expression's value with its type
kept; any other string containing ``{{ }}`` is rendered as text, each result converted the way
:func:`~flowlite.expression_functions.to_text` does (``None`` is empty, booleans are
``true``/``false``, objects and lists are JSON). Dicts and lists of such strings evaluate
element by element; their keys are never evaluated.

The syntax is Python's (``ast.parse(…, mode="eval")``) and the evaluator is safe by construction:
the compiler accepts only the syntax-tree nodes it knows, resolves every name, function and
method name against fixed tables while compiling, and turns the tree into nested closures. No
user text is ever given to ``eval``, ``exec`` or ``compile``, and no value is read with
``getattr``: at run time attributes, methods and functions come from the tables in
:mod:`flowlite.expression_functions`, keyed by value type.

Decisions where the spec is silent:

- A missing key reads as ``None``, through ``.`` and ``[]`` alike (``json.missing`` is
  ``None``, as in n8n); reading anything of ``None`` fails (``json.missing.x`` is an error that
  names ``json.missing``). A list position out of range also reads as ``None``.
- ``obj.name`` reads the key ``name`` of an object. In call position, ``obj.name(…)`` calls the
  allowed method ``name`` (``json.order.items()`` is the method even when the object has a key
  ``items``: keys hold data, which could never be called).
- Attributes starting with ``_`` are refused outright, also as object keys: write
  ``json["_id"]``.
- Values are never changed: no method that mutates (``append``, ``pop``, ``update``) exists.
- No f-strings, no sets, no lambdas, no ``:=``, no ``*``/``**`` unpacking; ``%`` works on
  numbers only (on text it is printf formatting, which can reach attributes of its arguments).
- Generator expressions are allowed and behave like list comprehensions (they are built eagerly,
  within the same loop budget).
- ``str(x)`` converts the way a template renders (``str(None)`` is ``""``, ``str(true)`` is
  ``"true"``).
- A typed result is made JSON-compatible: tuples become lists, datetimes and dates ISO 8601
  text, timedeltas seconds.
- ``sorted``, ``min`` and ``max`` take ``key`` as a field name (dotted paths allowed); items
  without the field sort last.
- There is no escape for a literal ``{{``; an unclosed ``{{`` is an error. A string is typed
  only when it is exactly ``{{ … }}``: surrounding whitespace makes it a text template.

Bounds (module constants here and in :mod:`flowlite.expression_functions`): the source length
(MAX_SOURCE_LENGTH) and syntax-tree depth (MAX_DEPTH) of an expression, ``for`` clauses per
comprehension (MAX_LOOPS), loop iterations per evaluation (MAX_STEPS), data read or produced per
evaluation (MAX_WORK, checked before building a value), integer size (MAX_INT_BITS) and
``range`` length (MAX_RANGE). Exceeding one is an :class:`ExpressionError` like any other.
"""

from __future__ import annotations

import abc
import ast
import datetime as dt
import functools
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flowlite.errors import ExpressionError
from flowlite.expression_functions import (
    ELEMENT_COST,
    FUNCTIONS,
    MAX_DATA_DEPTH,
    MAX_STEPS,
    MAX_WORK,
    METHOD_NAMES,
    Scope,
    add,
    compare,
    find_method,
    finish,
    iterate,
    multiply,
    operator_for,
    read_attribute,
    subscript,
    take_slice,
    to_json_value,
    to_text,
    unary_for,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LOOPS",
    "MAX_SOURCE_LENGTH",
    "Compiled",
    "EvalContext",
    "compile_value",
    "evaluate_text",
    "expression_problems",
    "has_expression",
]

#: characters of one expression's source
MAX_SOURCE_LENGTH = 10_000
#: depth of one expression's syntax tree
MAX_DEPTH = 50
#: ``for`` clauses of one comprehension
MAX_LOOPS = 10
_CACHE_SIZE = 4096
_CACHED_TEXT_LENGTH = 65_536

_UTC = dt.UTC


@dataclass
class EvalContext:
    """Everything an expression can see during one node run (shared by all items)."""

    items: list[dict[str, Any]]
    node_output: Callable[[str], list[dict[str, Any]] | None] = lambda name: None
    workflow: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    timezone: dt.tzinfo = _UTC
    #: clock override for tests; by default the real time in ``timezone``
    now: Callable[[], dt.datetime] | None = None
    _input_json: tuple[list[dict[str, Any]], int, list[Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def input_json(self) -> list[Any]:
        """The json of every input item, built once per context (``items`` in expressions)."""
        cached = self._input_json
        items = self.items
        if cached is None or cached[0] is not items or cached[1] != len(items):
            cached = (items, len(items), [it.get("json") for it in items])
            self._input_json = cached
        return cached[2]


class Compiled(abc.ABC):
    """A parameter value compiled once; :meth:`evaluate` gives its value for one input item."""

    __slots__ = ()

    #: True when the value holds no expression, so it is the same for every item
    is_static: bool

    @abc.abstractmethod
    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        """The value for input item ``index`` (``json`` is ``{}`` when there is no such item)."""


class _Static(Compiled):
    __slots__ = ("value",)
    is_static = True

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        return self.value


Fn = Callable[[Scope], Any]


# Scopes are pooled per compiled expression: building one costs more than evaluating a simple
# expression. list.pop and list.append are atomic, so threads never share a scope. A released
# scope points at _RELEASED, so that a cached expression keeps no execution's items alive.
_RELEASED = EvalContext(items=[])


class _Expression(Compiled):
    """A string that is exactly one ``{{ expr }}``: the value keeps its type."""

    __slots__ = ("_convert", "_pool", "_run", "source")
    is_static = False

    def __init__(self, source: str, run: Fn, convert: bool) -> None:
        self.source = source
        self._run = run
        self._convert = convert
        self._pool: list[Scope] = []

    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        # The hot path of the whole engine: Scope.open and the release are inlined.
        pool = self._pool
        try:
            scope = pool.pop()
        except IndexError:
            scope = Scope(_RELEASED, 0)
        try:
            scope.ctx = ctx
            scope.index = index
            items = ctx.items
            scope.json = items[index]["json"] if 0 <= index < len(items) else {}
            scope.steps = scope.work = 0
            value = self._run(scope)
            kind = type(value)
            if kind in _SCALARS:
                return value
            if self._convert:
                return finish(scope, value)
            return value if kind is dict or kind is list else to_json_value(value)
        except Exception as exc:
            raise _evaluation_error(exc, self.source) from None
        finally:
            scope.ctx = _RELEASED
            scope.json = scope.names = None
            pool.append(scope)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_TYPES = _SCALARS | {dict, list}


class _JsonPath(Compiled):
    """``json.a.b[0]`` or ``json["a"]``, the most common expression, walked without a scope.

    Anything but objects and in-range list positions on the way (a missing key read further,
    a datetime) falls back to the general compiled expression, which gives the same result or
    the proper error.
    """

    __slots__ = ("_general", "_keys")
    is_static = False

    def __init__(self, keys: tuple[Any, ...], general: _Expression) -> None:
        self._keys = keys
        self._general = general

    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        items = ctx.items
        if 0 <= index < len(items):
            obj = items[index].get("json")
            for key in self._keys:
                if type(obj) is dict:
                    obj = obj.get(key)
                elif type(obj) is list and type(key) is int and -len(obj) <= key < len(obj):
                    obj = obj[key]
                else:
                    return self._general.evaluate(ctx, index)
            if type(obj) in _JSON_TYPES:
                return obj
        return self._general.evaluate(ctx, index)


class _Template(Compiled):
    """A string with text around or between expressions: rendered as text."""

    __slots__ = ("_expressions", "_literals", "_pool")
    is_static = False

    def __init__(self, literals: list[str], expressions: list[tuple[str, Fn]]) -> None:
        # literals[i] comes before expressions[i]; the last literal ends the string.
        self._literals = literals
        self._expressions = list(zip(expressions, literals[1:], strict=True))
        self._pool: list[Scope] = []

    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        pool = self._pool
        try:
            scope = pool.pop()
        except IndexError:
            scope = Scope(_RELEASED, 0)
        out = [self._literals[0]]
        source = ""
        try:
            # Scope.open and the release inlined, as in _Expression.evaluate.
            scope.ctx = ctx
            scope.index = index
            items = ctx.items
            scope.json = items[index]["json"] if 0 <= index < len(items) else {}
            scope.steps = scope.work = 0
            for part in self._expressions:
                (source, run), literal = part
                value = run(scope)
                kind = type(value)
                text = (
                    value if kind is str else str(value) if kind is int else to_text(scope, value)
                )
                # Each part is charged: repeating one large value in many parts adds up.
                scope.work += len(text)
                out.append(text)
                out.append(literal)
            if scope.work > MAX_WORK:
                scope.spend(0)  # raises, with the message
        except Exception as exc:
            raise _evaluation_error(exc, source) from None
        finally:
            scope.ctx = _RELEASED
            scope.json = scope.names = None
            pool.append(scope)
        return "".join(out)


class _Dict(Compiled):
    __slots__ = ("_entries",)
    is_static = False

    def __init__(self, entries: list[tuple[Any, Compiled]]) -> None:
        self._entries = entries

    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        return {key: value.evaluate(ctx, index) for key, value in self._entries}


class _List(Compiled):
    __slots__ = ("_elements",)
    is_static = False

    def __init__(self, elements: list[Compiled]) -> None:
        self._elements = elements

    def evaluate(self, ctx: EvalContext, index: int) -> Any:
        return [element.evaluate(ctx, index) for element in self._elements]


def _shown(source: str) -> str:
    """The expression as quoted in a message: long ones are cut."""
    return source if len(source) <= 200 else source[:200] + "…"


def _evaluation_error(exc: Exception, source: str) -> ExpressionError:
    if isinstance(exc, ExpressionError):
        return ExpressionError(exc.reason, expression=_shown(source))
    if isinstance(exc, ZeroDivisionError):
        reason = "division by zero"
    elif isinstance(exc, RecursionError):
        reason = "the value is nested too deeply"
    elif isinstance(exc, OverflowError):
        reason = f"a number is out of range ({exc})"
    elif isinstance(exc, MemoryError):
        reason = "out of memory"
    elif isinstance(exc, KeyError):
        reason = f"missing key {exc}"
    else:
        reason = str(exc) or type(exc).__name__
    return ExpressionError(reason, expression=_shown(source))


# --- public functions -------------------------------------------------------------------------


def compile_value(value: Any) -> Compiled:
    """Compile a parameter value: a string with ``{{ }}``, or a dict or list holding them.

    A value without expressions compiles to a static :class:`Compiled` returning the original
    object. Raises :class:`ExpressionError` for an expression that does not parse or uses
    anything outside the allow-list.
    """
    return _compile_value(value, 0)


def _compile_value(value: Any, depth: int) -> Compiled:
    if isinstance(value, str):
        return _compile_string(value) if "{{" in value else _Static(value)
    if not isinstance(value, dict | list):
        return _Static(value)
    if depth > MAX_DATA_DEPTH:
        raise ExpressionError(f"the parameter value is nested more than {MAX_DATA_DEPTH} levels")
    if isinstance(value, dict):
        entries = [(key, _compile_value(sub, depth + 1)) for key, sub in value.items()]
        if all(compiled.is_static for _, compiled in entries):
            return _Static(value)
        return _Dict(entries)
    elements = [_compile_value(sub, depth + 1) for sub in value]
    if all(compiled.is_static for compiled in elements):
        return _Static(value)
    return _List(elements)


def has_expression(value: Any) -> bool:
    """Whether any string inside ``value`` holds ``{{``."""
    return _has_expression(value, 0)


def _has_expression(value: Any, depth: int) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if not isinstance(value, dict | list):
        return False
    if depth > MAX_DATA_DEPTH:
        return True  # so that expression_problems gets to say why
    subs = value.values() if isinstance(value, dict) else value
    return any(_has_expression(sub, depth + 1) for sub in subs)


def expression_problems(value: Any) -> list[str]:
    """Why the expressions inside ``value`` do not compile (for validation); ``[]`` when fine."""
    problems: list[str] = []
    _collect_problems(value, 0, problems)
    return problems


def _collect_problems(value: Any, depth: int, problems: list[str]) -> None:
    if isinstance(value, str):
        if "{{" in value:
            try:
                _compile_string(value)
            except ExpressionError as exc:
                problems.append(exc.message)
        return
    if not isinstance(value, dict | list):
        return
    if depth > MAX_DATA_DEPTH:
        problems.append(f"the parameter value is nested more than {MAX_DATA_DEPTH} levels")
        return
    for sub in value.values() if isinstance(value, dict) else value:
        _collect_problems(sub, depth + 1, problems)


def evaluate_text(text: str, ctx: EvalContext, index: int = 0) -> Any:
    """Compile (cached) and evaluate ``text`` for input item ``index``."""
    return compile_value(text).evaluate(ctx, index)


# --- templates --------------------------------------------------------------------------------


def _compile_string(text: str) -> Compiled:
    # Huge strings are rare (an HTML body) and would pin a lot of memory in the cache.
    if len(text) > _CACHED_TEXT_LENGTH:
        return _compile_text(text)
    return _compile_cached(text)


def _compile_text(text: str) -> Compiled:
    pieces = _split_template(text)
    if len(pieces) == 3 and pieces[0] == "" and pieces[2] == "":
        source = pieces[1]
        tree = _parse(source)
        general = _Expression(source, _Compiler(source).compile(tree), not _is_data_read(tree))
        keys = _json_path(tree)
        return _JsonPath(keys, general) if keys else general
    literals = pieces[0::2]
    expressions = [(source, _Compiler(source).compile(_parse(source))) for source in pieces[1::2]]
    return _Template(literals, expressions)


_compile_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_compile_text)


def _split_template(text: str) -> list[str]:
    """Alternating literal text and expression sources: ``[text, expr, text, …, text]``."""
    pieces: list[str] = []
    position = 0
    # Bracket-aware scanning is bounded in total, so a hostile string full of `{{ ((` costs
    # linear time; past the budget the first `}}` ends each expression.
    budget = [2 * len(text) + MAX_SOURCE_LENGTH]
    while True:
        start = text.find("{{", position)
        if start < 0:
            pieces.append(text[position:])
            return pieces
        pieces.append(text[position:start])
        end = _closing_braces(text, start + 2, budget)
        if end < 0:
            end = text.find("}}", start + 2)
        if end < 0:
            raise ExpressionError("'{{' is not closed by '}}'", expression=text[start : start + 60])
        source = text[start + 2 : end].strip()
        if not source:
            raise ExpressionError("empty expression", expression=text[start : end + 2])
        pieces.append(source)
        position = end + 2


def _closing_braces(text: str, position: int, budget: list[int]) -> int:
    """Where the ``}}`` closing an expression starts, skipping brackets and string literals.

    ``{{ {"a": {"b": 1}} }}`` holds ``}}`` inside a dict literal; this finds the real end.
    Returns -1 when brackets or quotes do not balance (or ``budget`` runs out), so the caller
    falls back to the first ``}}`` and the parser reports any mistake.
    """
    depth = 0
    begin = position
    size = min(len(text), position + MAX_SOURCE_LENGTH + 2, position + max(budget[0], 0))
    try:
        while position < size:
            char = text[position]
            if char in "'\"":
                quote = char * 3 if text.startswith(char * 3, position) else char
                position += len(quote)
                while position < size and not text.startswith(quote, position):
                    position += 2 if text[position] == "\\" else 1
                if position >= size:
                    return -1
                position += len(quote)
                continue
            if char == "#":
                return -1  # a comment: where it ends is the first `}}`
            if char in "([{":
                depth += 1
            elif char in ")]}":
                if depth == 0:
                    return position if text.startswith("}}", position) else -1
                depth -= 1
            position += 1
        return -1
    finally:
        budget[0] -= position - begin


def _parse(source: str) -> ast.expr:
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"the expression is longer than {MAX_SOURCE_LENGTH:,} characters",
            expression=_shown(source),
        )
    try:
        # Warnings such as "invalid escape sequence" would be printed on stderr (or raised,
        # under -W error); a lenient string literal is not worth either.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", expression=_shown(source)) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "the expression is nested too deeply", expression=_shown(source)
        ) from None
    except ValueError as exc:
        raise ExpressionError(f"syntax error: {exc}", expression=_shown(source)) from None
    # Measured without recursion, so that compiling (which recurses) stays shallow.
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is nested more than {MAX_DEPTH} levels deep",
                expression=_shown(source),
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree.body


def _json_path(node: ast.expr) -> tuple[Any, ...] | None:
    """The constant keys of ``json.a["b"].c``, or ``None`` for any other expression."""
    keys: list[Any] = []
    while True:
        if isinstance(node, ast.Attribute):
            keys.append(node.attr)
        elif isinstance(node, ast.Subscript) and _constant_key(node.slice):
            assert isinstance(node.slice, ast.Constant)
            keys.append(node.slice.value)
        else:
            break
        node = node.value
    if not keys or not isinstance(node, ast.Name) or node.id != "json":
        return None
    return tuple(reversed(keys))


def _is_data_read(node: ast.expr) -> bool:
    """Whether the value comes straight from data, so it needs no deep conversion."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name | ast.Constant)


# --- the compiler -----------------------------------------------------------------------------

_CONSTANT_NAMES = {"true": True, "false": False, "null": None}
_RESERVED = frozenset(
    {"json", "binary", "index", "items", "workflow", "execution", "vars"}
    | set(_CONSTANT_NAMES)
    | {"True", "False", "None"}
    | set(FUNCTIONS)
)
_FORBIDDEN = {
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.Starred: "unpacking with * is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.JoinedStr: "f-strings are not supported; use + and str()",
    ast.Set: "sets are not supported; use a list",
    ast.SetComp: "sets are not supported; use a list",
}
_NAMES_HELP = "json, binary, index, items, workflow, execution, vars, node(), now(), today()"


def _constant(value: Any) -> Fn:
    return lambda scope: value


def _input_json(scope: Scope) -> list[Any]:
    return scope.ctx.input_json()


def _binary(scope: Scope) -> Any:
    items = scope.ctx.items
    index = scope.index
    return (items[index].get("binary") or {}) if 0 <= index < len(items) else {}


_NAMES: dict[str, Fn] = {
    "json": lambda scope: scope.json,
    "index": lambda scope: scope.index,
    "items": _input_json,
    "binary": _binary,
    "workflow": lambda scope: scope.ctx.workflow,
    "execution": lambda scope: scope.ctx.execution,
    "vars": lambda scope: scope.ctx.vars,
}


class _Compiler:
    """Turns one expression's syntax tree into closures, refusing anything not allowed."""

    def __init__(self, source: str) -> None:
        self.source = source
        #: names bound by the comprehensions around the node being compiled
        self.bound: list[frozenset[str]] = []

    def fail(self, reason: str) -> NoReturn:
        raise ExpressionError(reason, expression=_shown(self.source))

    def text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or "the value"

    def compile(self, node: ast.expr) -> Fn:
        handler = _HANDLERS.get(type(node))
        if handler is None:
            self.fail(_FORBIDDEN.get(type(node), f"{type(node).__name__} syntax is not allowed"))
        return handler(self, node)

    # -- leaves ----------------------------------------------------------------------------
    def constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if value is not None and type(value) not in (str, int, float, bool):
            self.fail(f"{type(value).__name__} literals are not allowed")
        return _constant(value)

    def name(self, node: ast.Name) -> Fn:
        name = node.id
        if name.startswith("_"):
            self.fail(f"name {name!r} is not allowed: names starting with '_' are private")
        if any(name in names for names in self.bound):
            return lambda scope: scope.names[name]  # type: ignore[index]
        if name in _CONSTANT_NAMES:
            return _constant(_CONSTANT_NAMES[name])
        reader = _NAMES.get(name)
        if reader is not None:
            return reader
        if name in FUNCTIONS:
            self.fail(f"{name!r} is a function: call it, {name}(…)")
        self.fail(f"name {name!r} is not defined (available: {_NAMES_HELP})")

    def check_attribute(self, name: str) -> None:
        if name.startswith("_"):
            self.fail(
                f"attribute {name!r} is not allowed: names starting with '_' are private"
                ' (read such a key with ["…"])'
            )

    def attribute(self, node: ast.Attribute) -> Fn:
        self.check_attribute(node.attr)
        return self.path(node)

    def path(self, node: ast.Attribute | ast.Subscript) -> Fn:
        """A chain of reads with constant keys, ``json.order.lines[0].sku``, in one closure."""
        steps: list[tuple[Any, bool, str]] = []
        base: ast.expr = node
        while True:
            if isinstance(base, ast.Attribute):
                self.check_attribute(base.attr)
                steps.append((base.attr, True, self.text(base.value)))
            elif isinstance(base, ast.Subscript) and _constant_key(base.slice):
                assert isinstance(base.slice, ast.Constant)
                steps.append((base.slice.value, False, self.text(base.value)))
            else:
                break
            base = base.value
        steps.reverse()
        start = self.compile(base)
        # `json` cannot be rebound (it is no valid loop variable): read it without a call.
        from_json = isinstance(base, ast.Name) and base.id == "json"
        if len(steps) == 1:
            key, is_attribute, where = steps[0]

            def read_one(scope: Scope) -> Any:
                obj = scope.json if from_json else start(scope)
                if type(obj) is dict:
                    return obj.get(key)
                if is_attribute:
                    return read_attribute(scope, obj, key, where)
                return subscript(obj, key, where)

            return read_one

        def read_path(scope: Scope) -> Any:
            obj = scope.json if from_json else start(scope)
            for key, is_attribute, where in steps:
                if type(obj) is dict:
                    obj = obj.get(key)
                elif is_attribute:
                    obj = read_attribute(scope, obj, key, where)
                else:
                    obj = subscript(obj, key, where)
            return obj

        return read_path

    def subscript(self, node: ast.Subscript) -> Fn:
        if isinstance(node.slice, ast.Tuple):
            self.fail("subscripts take one key or position")
        if _constant_key(node.slice):
            return self.path(node)
        value = self.compile(node.value)
        where = self.text(node.value)
        if isinstance(node.slice, ast.Slice):
            bounds = [
                self.compile(part) if part is not None else _constant(None)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            lower, upper, step = bounds
            return lambda scope: take_slice(
                scope, value(scope), lower(scope), upper(scope), step(scope), where
            )
        key = self.compile(node.slice)

        def read(scope: Scope) -> Any:
            obj = value(scope)
            if type(obj) is dict:
                return obj.get(key(scope))
            return subscript(obj, key(scope), where)

        return read

    # -- operators -------------------------------------------------------------------------
    def binop(self, node: ast.BinOp) -> Fn:
        op_name = type(node.op).__name__
        operator = operator_for(op_name)
        if operator is None:
            self.fail(f"the operator {op_name} is not allowed")
        if (
            op_name == "Mod"
            and isinstance(node.left, ast.Constant)
            and type(node.left.value) is str
        ):
            self.fail("'%' works on numbers only; text formatting with '%' is not allowed")
        left = self.compile(node.left)
        right = self.compile(node.right)
        if operator is add:
            return _fast_add(left, right, _number_constant(node.right))
        if operator is multiply:
            return _fast_multiply(left, right, _number_constant(node.right))
        return lambda scope: operator(scope, left(scope), right(scope))

    def unaryop(self, node: ast.UnaryOp) -> Fn:
        operator = unary_for(type(node.op).__name__)
        if operator is None:
            self.fail(f"the operator {type(node.op).__name__} is not allowed")
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda scope: not operand(scope)
        return lambda scope: operator(operand(scope))

    def boolop(self, node: ast.BoolOp) -> Fn:
        values = [self.compile(value) for value in node.values]
        if len(values) == 2:
            first, second = values
            if isinstance(node.op, ast.And):
                return lambda scope: first(scope) and second(scope)
            return lambda scope: first(scope) or second(scope)
        if isinstance(node.op, ast.And):

            def every(scope: Scope) -> Any:
                result: Any = True
                for value in values:
                    result = value(scope)
                    if not result:
                        return result
                return result

            return every

        def some(scope: Scope) -> Any:
            result: Any = False
            for value in values:
                result = value(scope)
                if result:
                    return result
            return result

        return some

    def compare(self, node: ast.Compare) -> Fn:
        operands = [self.compile(node.left)] + [self.compile(c) for c in node.comparators]
        nodes = [node.left, *node.comparators]
        checks: list[Callable[[Scope, Any, Any], bool]] = []
        for position, op in enumerate(node.ops):
            op_name = type(op).__name__
            check = compare(op_name)
            if check is None:
                self.fail(f"the comparison {op_name} is not allowed")
            if op_name in ("Is", "IsNot") and not any(
                _is_singleton(n) for n in nodes[position : position + 2]
            ):
                self.fail("'is' compares with None, True or False only; use == for values")
            checks.append(check)
        if len(checks) == 1:
            fast = _FAST_COMPARISONS.get(type(node.ops[0]))
            if fast is not None:
                return _fast_compare(operands[0], operands[1], fast, checks[0])
            check = checks[0]
            left, right = operands
            return lambda scope: check(scope, left(scope), right(scope))

        def chain(scope: Scope) -> bool:
            a = operands[0](scope)
            for check, operand in zip(checks, operands[1:], strict=True):
                b = operand(scope)
                if not check(scope, a, b):
                    return False
                a = b
            return True

        return chain

    def ifexp(self, node: ast.IfExp) -> Fn:
        test = self.compile(node.test)
        body = self.compile(node.body)
        orelse = self.compile(node.orelse)
        return lambda scope: body(scope) if test(scope) else orelse(scope)

    # -- literals --------------------------------------------------------------------------
    def sequence(self, node: ast.List | ast.Tuple) -> Fn:
        elements = [self.compile(element) for element in node.elts]
        make = list if isinstance(node, ast.List) else tuple
        if self.bound:
            # Inside a loop a literal is built once per step: charge its size.
            size = ELEMENT_COST * len(elements)

            def build_charged(scope: Scope) -> Any:
                scope.spend(size)
                return make([element(scope) for element in elements])

            return build_charged
        return lambda scope: make([element(scope) for element in elements])

    def mapping(self, node: ast.Dict) -> Fn:
        if any(key is None for key in node.keys):
            self.fail("unpacking with ** is not allowed")
        pairs = [
            (self.compile(key), self.compile(value))
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        ]
        size = ELEMENT_COST * len(pairs) if self.bound else 0

        def build(scope: Scope) -> dict[Any, Any]:
            if size:
                scope.spend(size)
            return {key(scope): value(scope) for key, value in pairs}

        return build

    # -- calls -----------------------------------------------------------------------------
    def call(self, node: ast.Call) -> Fn:
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail("unpacking arguments with * is not allowed")
        for keyword in node.keywords:
            if keyword.arg is None:
                self.fail("unpacking arguments with ** is not allowed")
            if keyword.arg.startswith("_"):
                self.fail(f"keyword {keyword.arg!r} is not allowed")
        func = node.func
        if isinstance(func, ast.Name):
            return self.function_call(node, func.id)
        if isinstance(func, ast.Attribute):
            return self.method_call(node, func)
        self.fail("only the listed functions and methods can be called")

    def arguments(self, node: ast.Call) -> tuple[list[Fn], dict[str, Fn]]:
        args = [self.compile(arg) for arg in node.args]
        kwargs = {str(k.arg): self.compile(k.value) for k in node.keywords}
        return args, kwargs

    def function_call(self, node: ast.Call, name: str) -> Fn:
        if name.startswith("_"):
            self.fail(f"name {name!r} is not allowed: names starting with '_' are private")
        spec = FUNCTIONS.get(name)
        if spec is None:
            if name in _NAMES or name in _CONSTANT_NAMES or any(name in b for b in self.bound):
                self.fail(f"{name!r} is not a function")
            self.fail(f"function {name!r} is not available")
        args, kwargs = self.arguments(node)
        if not spec.min_args <= len(args) <= spec.max_args:
            counts = (
                f"{spec.min_args}"
                if spec.min_args == spec.max_args
                else f"{spec.min_args} to {spec.max_args}"
            )
            self.fail(f"{name}() takes {counts} argument(s), got {len(args)}")
        for keyword in kwargs:
            if keyword not in spec.keywords and not spec.any_keywords:
                allowed = ", ".join(sorted(spec.keywords)) or "none"
                self.fail(f"{name}() has no argument {keyword!r} (keywords: {allowed})")
        call = spec.call
        if kwargs:
            return lambda scope: call(
                scope,
                *[arg(scope) for arg in args],
                **{key: arg(scope) for key, arg in kwargs.items()},
            )
        if not args:
            return lambda scope: call(scope)
        if len(args) == 1:
            only = args[0]
            return lambda scope: call(scope, only(scope))
        return lambda scope: call(scope, *[arg(scope) for arg in args])

    def method_call(self, node: ast.Call, func: ast.Attribute) -> Fn:
        name = func.attr
        self.check_attribute(name)
        if name not in METHOD_NAMES:
            self.fail(f"method {name!r} is not allowed")
        target = self.compile(func.value)
        where = self.text(func.value)
        args, kwargs = self.arguments(node)
        if kwargs:
            return lambda scope: _call_method(
                scope,
                target(scope),
                name,
                where,
                [arg(scope) for arg in args],
                {key: arg(scope) for key, arg in kwargs.items()},
            )
        if not args:

            def call_bare(scope: Scope) -> Any:
                obj = target(scope)
                return find_method(obj, name, where)(scope, obj)

            return call_bare
        return lambda scope: _call_method(
            scope, target(scope), name, where, [arg(scope) for arg in args], {}
        )

    # -- comprehensions --------------------------------------------------------------------
    def comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> Fn:
        if len(node.generators) > MAX_LOOPS:
            self.fail(f"a comprehension may have at most {MAX_LOOPS} 'for' clauses")
        outer = len(self.bound)
        levels: list[_Level] = []
        names: set[str] = set()
        try:
            for generator in node.generators:
                if generator.is_async:
                    self.fail("async comprehensions are not allowed")
                # As in Python, each iterable sees the variables of the loops before it.
                iterable = self.compile(generator.iter)
                bind, bound = self.target(generator.target)
                names.update(bound)
                self.bound.append(frozenset(bound))
                conditions = [self.compile(condition) for condition in generator.ifs]
                levels.append(_Level(iterable, bind, conditions))
            emit = self.emitter(node)
        finally:
            del self.bound[outer:]
        loop_names = tuple(names)
        make = dict if isinstance(node, ast.DictComp) else list

        def run(scope: Scope) -> Any:
            local = scope.names
            if local is None:
                local = scope.names = {}
            # Loop variables are local to the comprehension: restore what an enclosing
            # comprehension had bound under the same names.
            saved = [(name, local.get(name, _UNSET)) for name in loop_names]
            out: Any = make()
            try:
                _loop(scope, local, levels, 0, emit, out)
            finally:
                for name, previous in saved:
                    if previous is _UNSET:
                        local.pop(name, None)
                    else:
                        local[name] = previous
            return out

        return run

    def emitter(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> _Emit:
        if isinstance(node, ast.DictComp):
            key = self.compile(node.key)
            value = self.compile(node.value)

            def set_item(scope: Scope, out: Any) -> None:
                out[key(scope)] = value(scope)

            return set_item
        element = self.compile(node.elt)
        return lambda scope, out: out.append(element(scope))

    def target(self, target: ast.expr) -> tuple[_Bind, list[str]]:
        nodes = target.elts if isinstance(target, ast.Tuple) else [target]
        names: list[str] = []
        for node in nodes:
            if not isinstance(node, ast.Name):
                self.fail("loop variables must be plain names, e.g. 'for k, v in …'")
            if node.id.startswith("_") or node.id in _RESERVED:
                self.fail(f"{node.id!r} cannot be used as a loop variable")
            names.append(node.id)
        if not names or len(set(names)) != len(names):
            self.fail("loop variables must be distinct names")
        if isinstance(target, ast.Tuple):
            return _unpacker(names, self.text(target)), names
        only = names[0]

        def bind_one(local: dict[str, Any], value: Any) -> None:
            local[only] = value

        return bind_one, names


def _is_singleton(node: ast.expr) -> bool:
    """``None``, ``True`` or ``False`` (also as ``null``, ``true``, ``false``)."""
    if isinstance(node, ast.Name):
        return node.id in _CONSTANT_NAMES
    # `1 in (True,)` holds, so compare by identity: `x is 1` must stay refused.
    return isinstance(node, ast.Constant) and any(node.value is c for c in (None, True, False))


def _constant_key(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (str, int)


_UNSET: Any = object()
_Bind = Callable[[dict[str, Any], Any], None]
_Emit = Callable[[Scope, Any], None]


@dataclass(frozen=True, slots=True)
class _Level:
    """One ``for … in … if …`` of a comprehension."""

    iterable: Fn
    bind: _Bind
    conditions: list[Fn]


def _unpacker(names: list[str], where: str) -> _Bind:
    count = len(names)

    def bind_many(local: dict[str, Any], value: Any) -> None:
        if type(value) not in (list, tuple) or len(value) != count:
            raise ExpressionError(f"cannot unpack a value into {count} loop variables ({where})")
        for name, item in zip(names, value, strict=True):
            local[name] = item

    return bind_many


def _loop(
    scope: Scope, local: dict[str, Any], levels: list[_Level], depth: int, emit: _Emit, out: Any
) -> None:
    level = levels[depth]
    inner = depth + 1 < len(levels)
    conditions = level.conditions
    condition = conditions[0] if len(conditions) == 1 else None
    bind = level.bind
    for item in iterate(scope, level.iterable(scope)):
        scope.steps += 1
        if scope.steps > MAX_STEPS:
            scope.step()  # raises, with the message
        bind(local, item)
        if condition is not None:
            if not condition(scope):
                continue
        elif conditions and not all(condition(scope) for condition in conditions):
            continue
        if inner:
            _loop(scope, local, levels, depth + 1, emit, out)
        else:
            emit(scope, out)


def _call_method(
    scope: Scope, obj: Any, name: str, where: str, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    return find_method(obj, name, where)(scope, obj, *args, **kwargs)


# --- fast paths ----------------------------------------------------------------------------
# The common cases (numbers, short text) skip the general operators' type dispatch; anything
# else goes through them. Products of integers below 2**1024 stay under MAX_INT_BITS, so they
# need no size check; comparing text costs its length, so only short text skips the budget.

_FAST_NUMBERS = frozenset({int, float})
_SMALL = 2**1024
_SHORT = 4096

_FAST_COMPARISONS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _number_constant(node: ast.expr) -> int | float | None:
    if isinstance(node, ast.Constant):
        value = node.value
        if (type(value) is int or type(value) is float) and -_SMALL < value < _SMALL:
            return value
    return None


def _fast_add(left: Fn, right: Fn, constant: float | None) -> Fn:
    if constant is not None:
        c = constant

        def plus_constant(scope: Scope) -> Any:
            a = left(scope)
            if type(a) in _FAST_NUMBERS:
                return a + c
            return add(scope, a, c)

        return plus_constant

    def plus(scope: Scope) -> Any:
        a = left(scope)
        b = right(scope)
        if type(a) in _FAST_NUMBERS and type(b) in _FAST_NUMBERS:
            return a + b
        return add(scope, a, b)

    return plus


def _fast_multiply(left: Fn, right: Fn, constant: float | None) -> Fn:
    if constant is not None:
        c = constant

        def times_constant(scope: Scope) -> Any:
            a = left(scope)
            if type(a) in _FAST_NUMBERS and -_SMALL < a < _SMALL:
                return a * c
            return multiply(scope, a, c)

        return times_constant

    def times(scope: Scope) -> Any:
        a = left(scope)
        b = right(scope)
        if (
            type(a) in _FAST_NUMBERS
            and type(b) in _FAST_NUMBERS
            and -_SMALL < a < _SMALL
            and -_SMALL < b < _SMALL
        ):
            return a * b
        return multiply(scope, a, b)

    return times


def _fast_compare(
    left: Fn,
    right: Fn,
    fast: Callable[[Any, Any], bool],
    check: Callable[[Scope, Any, Any], bool],
) -> Fn:
    def compare_values(scope: Scope) -> bool:
        a = left(scope)
        b = right(scope)
        ta = type(a)
        tb = type(b)
        if (ta in _FAST_NUMBERS and tb in _FAST_NUMBERS) or (
            ta is str and tb is str and len(a) < _SHORT
        ):
            return fast(a, b)
        return check(scope, a, b)

    return compare_values


_HANDLERS: dict[type, Callable[[_Compiler, Any], Fn]] = {
    ast.Constant: _Compiler.constant,
    ast.Name: _Compiler.name,
    ast.Attribute: _Compiler.attribute,
    ast.Subscript: _Compiler.subscript,
    ast.BinOp: _Compiler.binop,
    ast.UnaryOp: _Compiler.unaryop,
    ast.BoolOp: _Compiler.boolop,
    ast.Compare: _Compiler.compare,
    ast.IfExp: _Compiler.ifexp,
    ast.List: _Compiler.sequence,
    ast.Tuple: _Compiler.sequence,
    ast.Dict: _Compiler.mapping,
    ast.Call: _Compiler.call,
    ast.ListComp: _Compiler.comprehension,
    ast.GeneratorExp: _Compiler.comprehension,
    ast.DictComp: _Compiler.comprehension,
}
