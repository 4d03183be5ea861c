"""Escape and exhaustion attempts: every one must end in ExpressionError, quickly.

Expression text is treated as code written by an attacker (spec section 5). Each attempt below
either is refused when compiling or fails while evaluating; none may reach Python internals,
raise another exception, or run away with time or memory (pytest-timeout bounds the module).
"""

from __future__ import annotations

import contextlib
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlite.errors import ExpressionError
from flowlite.expressions import EvalContext, compile_value, expression_problems

pytestmark = pytest.mark.timeout(60)


def make_ctx() -> EvalContext:
    return EvalContext(
        items=[
            {"json": {"a": 1, "s": "text", "l": [1, 2], "d": {"k": "v"}, "big": "x" * 1000}},
            {"json": {"a": 2}},
        ],
        node_output=lambda name: [{"json": {"n": 1}}] if name == "x" else None,
        workflow={"id": "w", "name": "W", "active": False},
        execution={"id": "e", "mode": "cli", "resume_url": None},
        vars={"v": 1},
    )


def attempt(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_value(text).evaluate(make_ctx(), 0)
    return info.value


DUNDERS = [
    "json.__class__",
    "json.__class__.__mro__",
    "json.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[-1].__subclasses__()",
    "[].__class__",
    "json.get.__self__",
    "json.get.__globals__",
    "items.__len__",
    "items.__len__()",
    "now().__class__",
    "today().__class__.__init__",
    "timedelta(1).__class__",
    "node('x').__dict__",
    "node('x')._items",
    "node('x').__class__",
    "(1).__class__",
    "json._private",
    "json.__dict__",
    "json.__getitem__('a')",
    "workflow.__class__",
    "vars.__init__.__globals__",
    "json.\uff47\uff45\uff54.__self__",
    "json.\uff3f\uff3fclass\uff3f\uff3f",
]

NAMES = [
    "__builtins__",
    "__builtins__['eval']",
    "__import__('os')",
    "__import__('os').system('true')",
    "getattr(json, '__class__')",
    "setattr(json, 'a', 1)",
    "type(json)",
    "type",
    "open('/etc/passwd')",
    "open('/etc/passwd').read()",
    "eval('1')",
    "exec('1')",
    "compile('1', '', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "input()",
    "print(1)",
    "breakpoint()",
    "help()",
    "object",
    "str.mro",
    "str.mro()",
    "str.__subclasses__()",
    "datetime.__class__",
    "datetime.now()",
    "len.__self__",
    "jmespath.search",
    "os",
    "sys.modules",
    "_",
    "__name__",
    "__loader__",
    "__spec__",
    "isinstance(json, dict)",
]

SYNTAX = [
    "lambda: 1",
    "(lambda: 1)()",
    "(x := 1)",
    "[y := 1]",
    "[*items]",
    "{**json}",
    "dict(**json)",
    "len(*items)",
    "f'{json.__class__}'",
    "f'{json}'",
    "{1, 2}",
    "{x for x in items}",
    "await json",
    "(yield)",
    "[x async for x in items]",
    "1 if True else (lambda: 1)",
    "json.a @ json.a",
    "json[1:2, 3]",
    "b'bytes'",
    "1j",
    "...",
    "json.a is 1",
    "json is json",
]

FORMATTING = [
    "'{0.__class__}'.format(json)",
    "'{}'.format(json)",
    "'{a}'.format_map(json)",
    "'%s' % json",
    "'%(a)s' % json",
    "'%s' % (json,)",
    "json.s % json",
    "json.s % 1",
    "'%d' % 1",
    "str.format('{}', 1)",
    "now().strftime('%99999999Y')",
    "now().strftime('%_9999d')",
    "now().strftime('%' * 300)",
    "'x'.encode()",
    "'x'.translate({})",
    "'x'.maketrans('a', 'b')",
    "'x'.expandtabs(10**9)",
]

KEYWORDS = [
    "sorted(items, key=len)",
    "sorted(items, key=str)",
    "sorted(items, key=lambda x: x)",
    "min(items, key=getattr)",
    "json_dumps(json, cls=1)",
    "json_dumps(json, default=str)",
    "json_loads('1', object_hook=str)",
    "dict(__class__=1)",
    "now().replace(tzinfo=json)",
    "now().astimezone('/etc/localtime')",
    "now().astimezone('../../../../etc/passwd')",
    "now().astimezone(json)",
    "datetime('2024-01-01', tz='x')",
    "timedelta(foo=1)",
    "int('1', base=2)",
]

MUTATION = [
    "json.pop('a')",
    "json.update({})",
    "json.clear()",
    "json.setdefault('a', 1)",
    "json.popitem()",
    "items.append(1)",
    "items.extend([1])",
    "items.insert(0, 1)",
    "items.pop()",
    "items.sort()",
    "items.reverse()",
    "items.clear()",
    "json.l.remove(1)",
    "json.copy()",
]

JMESPATH = [
    "jmespath('foo', node('x'))",
    "jmespath(json, json)",
    "jmespath('[', json)",
    "jmespath('a' * 2000, json)",
    "jmespath('foo', json).__class__",
    "jmespath('to_number(@)', 'x').__class__",
    "jmespath('a' + '.a' * 5000, json)",
]

EXHAUSTION = [
    "'a' * 10**10",
    "10**10 * 'a'",
    "[0] * 10**9",
    "[[0] * 10**5 for x in range(1000)]",
    "'a' * 10**7 * 10",
    "10**10**10",
    "2**100000",
    "9**9**9",
    "(10**1000) ** 5",
    "(10**1000) * (10**1000) * (10**1000) * (10**1000) * (10**1000)",
    "1 << 10**9",
    "-1 << 10**9",
    "10.0 ** 10**6",
    "int('9' * 5000)",
    "range(10**10)",
    "range(10**100)",
    "range(10001)",
    "list(range(10**6))",
    "[x for x in range(10000) for y in range(10000)]",
    "[[y for y in range(10000)] for x in range(10000)]",
    "[x for x in range(10000) for y in range(10000) for z in range(10000)]",
    "sum([x for x in range(10000) for y in range(10000)])",
    "{x: y for x in range(10000) for y in range(10000)}",
    "any(x < 0 for x in range(10000) for y in range(10000))",
    "[json.big * 1000 for x in range(10000)]",
    "[json.big.upper() for x in range(10000) for y in range(10)]",
    "[json.big.count('x') for x in range(10000) for y in range(10)]",
    "'x'.join([json.big] * 10**6)",
    "json.big.replace('x', json.big).replace('x', json.big).replace('x', json.big)",
    "json.big.replace('', json.big * 1000)",
    "'x'.zfill(10**10)",
    "'x'.center(10**10)",
    "json_dumps([json.big] * 10**5)",
    "str([json.big] * 10**5)",
    "len(str([[json.big] * 1000] * 1000))",
    "json_dumps([[[[[[[[json.big] * 10] * 10] * 10] * 10] * 10] * 10] * 10])",
    "sorted(range(10000) for x in range(10000))",
    "json_loads('[' * 100000 + ']' * 100000)",
    "json_loads('9' * 5000)",
    "round(1, -10**9)",
    "round(1.5, 10**9)",
    "datetime(10**20)",
    "timedelta(days=10**20)",
    "float(10**400)",
    "10**400 / 3",
    "'%s' * 10**10",
]

DEEP = [
    "(" * 1000 + "1" + ")" * 1000,
    "[" * 1000 + "]" * 1000,
    "{" * 1000 + "}" * 1000,
    "-" * 5000 + "1",
    "not " * 2000 + "1",
    "~" * 5000 + "1",
    "1" + " + 1" * 2000,
    "json" + ".a" * 2000,
    "json" + "[0]" * 2000,
    "f(" * 1000 + ")" * 1000,
    "len(" * 100 + "1" + ")" * 100,
    "1 if 1 else " * 1000 + "1",
    "[" + "[x for x in " * 100 + "[1]" + "]" * 100 + "]",
    "[1 for a in [1] " + "for a in [1] " * 500 + "]",
    "a" * 20_000,
]

ALL = DUNDERS + NAMES + SYNTAX + FORMATTING + KEYWORDS + MUTATION + JMESPATH + EXHAUSTION + DEEP


@pytest.mark.parametrize("source", ALL, ids=[s[:60] for s in ALL])
def test_escape_attempt_fails_with_expression_error(source: str) -> None:
    error = attempt("{{ " + source + " }}")
    assert error.expression is not None
    assert len(str(error)) < 1000


@pytest.mark.parametrize("source", DUNDERS + NAMES + SYNTAX + MUTATION + DEEP[:10])
def test_refused_before_running(source: str) -> None:
    """What can be refused from the text alone is refused when compiling (validation)."""
    text = "{{ " + source + " }}"
    with pytest.raises(ExpressionError):
        compile_value(text)
    assert expression_problems(text)


def test_refusals_also_apply_inside_templates_and_nested_values() -> None:
    with pytest.raises(ExpressionError):
        compile_value("prefix {{ json.__class__ }} suffix")
    with pytest.raises(ExpressionError):
        compile_value({"a": ["ok", "{{ __import__('os') }}"]})
    with pytest.raises(ExpressionError):
        compile_value("a {{ 'a' * 10**10 }}").evaluate(make_ctx(), 0)


def test_item_data_cannot_smuggle_code() -> None:
    ctx = EvalContext(items=[{"json": {"code": "__import__('os')", "f": "{{ json.__class__ }}"}}])
    assert compile_value("{{ json.code }}").evaluate(ctx, 0) == "__import__('os')"
    assert compile_value("{{ json.f }}").evaluate(ctx, 0) == "{{ json.__class__ }}"
    assert compile_value("{{ json['__class__'] }}").evaluate(ctx, 0) is None
    assert compile_value("{{ jmespath('__class__', json) }}").evaluate(ctx, 0) is None


def test_python_objects_in_item_data_expose_nothing() -> None:
    class Secret:
        token = "s3cr3t"

        def get(self, key: str) -> str:
            return self.token

    ctx = EvalContext(items=[{"json": {"obj": Secret()}}])
    for source in ("json.obj.token", "json.obj.get('token')", "json.obj['token']", "json.obj + 1"):
        with pytest.raises(ExpressionError):
            compile_value("{{ " + source + " }}").evaluate(ctx, 0)


# --- random input -----------------------------------------------------------------------------

TOKENS = [
    "{{", "}}", "json", "items", "index", "node('x')", "now()", "today()", "vars", ".", ",",
    "a", "l", "d", "s", "get", "keys", "upper", "__class__", "_", "(", ")", "[", "]", "{", "}",
    ":", "+", "-", "*", "/", "//", "%", "**", "<<", "==", "<", "in", "not", "and", "or", "if",
    "else", "for", "x", "lambda", "'", '"', "0", "1", "-1", "10**9", "2.5", "None", "true",
    "range(", "len(", "str(", "sorted(", "json_dumps(", "jmespath(", "'a'", "' '", "\\", " ",
]  # fmt: skip


def _run(text: str) -> None:
    try:
        compiled = compile_value(text)
    except ExpressionError:
        return
    try:
        compiled.evaluate(make_ctx(), 0)
        compiled.evaluate(make_ctx(), 5)
    except ExpressionError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=string.printable, max_size=80))
def test_random_printable_text_compiles_or_raises_expression_error(text: str) -> None:
    _run(text)
    _run("{{" + text + "}}")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_random_token_soup_compiles_or_raises_expression_error(tokens: list[str]) -> None:
    _run("{{ " + " ".join(tokens) + " }}")
    _run("{{ " + "".join(tokens) + " }}")


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
))  # fmt: skip
def test_any_item_data_evaluates_or_raises_expression_error(data: Any) -> None:
    ctx = EvalContext(items=[{"json": {"v": data}}])
    for source in (
        "json.v",
        "json.v.a",
        "json.v[0]",
        "str(json.v)",
        "len(json.v)",
        "sorted(json.v)",
        "json.v + json.v",
        "json.v * 2",
        "[x for x in json.v]",
        "json_dumps(json.v)",
        "json.v == json.v",
        "x{{ json.v }}",
    ):
        text = source if "{{" in source else "{{ " + source + " }}"
        with contextlib.suppress(ExpressionError):
            compile_value(text).evaluate(ctx, 0)


@pytest.mark.parametrize(
    "source",
    [
        "jmespath('[@, @]" + " | [@, @]" * 60 + "', json)",
        "[d for a in [[json, json]] for b in [[a, a]] for c in [[b, b]] for d in [[c, c]]"
        " for e in [[d, d]] for f in [[e, e]] for g in [[f, f]] for h in [[g, g]]"
        " for i in [[h, h]] for j in [[i, i]]][0] * 100000",
    ],
)
def test_results_whose_json_would_explode_are_refused(source: str) -> None:
    """Shared references make a value small in memory but huge once written as JSON."""
    ctx = EvalContext(items=[{"json": {"big": "x" * 1000}}])
    with pytest.raises(ExpressionError, match="too large"):
        compile_value("{{ " + source + " }}").evaluate(ctx, 0)
    with pytest.raises(ExpressionError, match="too large"):
        compile_value("x {{ " + source + " }}").evaluate(ctx, 0)


def test_comprehension_clauses_are_bounded() -> None:
    with pytest.raises(ExpressionError, match="at most 10 'for' clauses"):
        compile_value("{{ [1 " + "for a in [1] " * 11 + "] }}")


@pytest.mark.parametrize(
    "text",
    [
        "{{ (( }}" * 50_000,
        "{{ '" * 100_000,
        "{{ ([{ " * 50_000 + "}}",
        "x {{ 1 }} " * 20_000,
    ],
)
def test_hostile_templates_compile_in_linear_time(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        compile_value(text)


def test_comments_end_at_the_closing_braces() -> None:
    ctx = EvalContext(items=[{"json": {"a": 1}}])
    assert compile_value("{{ json.a # it's one }} and {{ 2 }}").evaluate(ctx, 0) == "1 and 2"
