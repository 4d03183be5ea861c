"""Expressions (spec section 5): results, rendering, names, functions, methods, errors."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
import zoneinfo
from typing import Any

import pytest

from flowlite.errors import ExpressionError
from flowlite.expression_functions import MAX_STEPS
from flowlite.expressions import (
    EvalContext,
    compile_value,
    evaluate_text,
    expression_problems,
    has_expression,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
# 2024-05-01 10:00 UTC is 12:00 in Berlin (summer time)
FIXED_NOW = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)

ORDER = {
    "id": 7,
    "total": 120.5,
    "status": "paid",
    "lines": [{"sku": "A-1", "qty": 2, "price": 10}, {"sku": "B-2", "qty": 3, "price": 5}],
}

OUTPUTS: dict[str, list[dict[str, Any]]] = {
    "Fetch": [{"json": {"n": 1}}, {"json": {"n": 2}}, {"json": {"n": 3}}],
    "Single": [{"json": {"n": 10}}],
    "Empty": [],
}


def make_ctx(**overrides: Any) -> EvalContext:
    fields: dict[str, Any] = {
        "items": [
            {"json": {"a": 3, "name": "Ann", "order": ORDER, "first name": "A", "_id": "x1"}},
            {"json": {"a": 4, "name": "Bob", "tags": ["x", "y"]}, "binary": {"file": {"size": 3}}},
        ],
        "node_output": OUTPUTS.get,
        "workflow": {"id": "w1", "name": "Orders", "active": True},
        "execution": {"id": "e1", "mode": "cli", "resume_url": None},
        "vars": {"region": "eu", "limit": 5},
        "timezone": BERLIN,
        "now": lambda: FIXED_NOW,
    }
    fields.update(overrides)
    return EvalContext(**fields)


@pytest.fixture
def ctx() -> EvalContext:
    return make_ctx()


def ev(text: str, ctx: EvalContext, index: int = 0) -> Any:
    return evaluate_text(text, ctx, index)


def fails(text: str, ctx: EvalContext, index: int = 0) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        ev(text, ctx, index)
    return info.value


# --- typed results and rendering ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ json.a }}", 3),
        ("{{json.a}}", 3),
        ("{{ json.order.total }}", 120.5),
        ("{{ json.order.total > 100 }}", True),
        ("{{ json.name }}", "Ann"),
        ("{{ json.order.lines }}", ORDER["lines"]),
        ("{{ json.order }}", ORDER),
        ("{{ null }}", None),
        ("{{ None }}", None),
        ("{{ true and not false }}", True),
        ("{{ [1, 2] + [3] }}", [1, 2, 3]),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ {'a': 1, 'b': [true, null]} }}", {"a": 1, "b": [True, None]}),
        ('{{ {"a": {"b": 1}} }}', {"a": {"b": 1}}),
        ("{{ '}}' }}", "}}"),
        ("{{\n  json.a\n}}", 3),
    ],
)
def test_whole_string_keeps_the_type(text: str, expected: Any, ctx: EvalContext) -> None:
    assert ev(text, ctx) == expected
    assert type(ev(text, ctx)) is type(expected)


def test_data_is_returned_without_copying(ctx: EvalContext) -> None:
    assert ev("{{ json.order }}", ctx) is ORDER
    assert ev("{{ json.order.lines }}", ctx) is ORDER["lines"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello {{ json.name }}!", "Hello Ann!"),
        ("{{ json.a }} items", "3 items"),
        (" {{ json.a }}", " 3"),
        ("{{ json.a }}{{ json.a }}", "33"),
        ("[{{ json.missing }}]", "[]"),
        ("{{ true }}/{{ false }}", "true/false"),
        ("x={{ 1.5 }}", "x=1.5"),
        ("o={{ json.order.lines[0] }}", 'o={"sku": "A-1", "qty": 2, "price": 10}'),
        ("l={{ ['é', 1] }}", 'l=["é", 1]'),
        ("at {{ now() }}", "at 2024-05-01T12:00:00+02:00"),
        ("on {{ today() }}", "on 2024-05-01"),
        ("no expression", "no expression"),
    ],
)
def test_mixed_strings_render_as_text(text: str, expected: str, ctx: EvalContext) -> None:
    assert ev(text, ctx) == expected


def test_dates_in_typed_results_become_iso_text(ctx: EvalContext) -> None:
    assert ev("{{ now() }}", ctx) == "2024-05-01T12:00:00+02:00"
    assert ev("{{ today() }}", ctx) == "2024-05-01"
    assert ev("{{ timedelta(hours=1) }}", ctx) == 3600.0
    assert ev("{{ {'at': now(), 'days': [today()]} }}", ctx) == {
        "at": "2024-05-01T12:00:00+02:00",
        "days": ["2024-05-01"],
    }


def test_nested_values_evaluate_element_by_element(ctx: EvalContext) -> None:
    value = {"a": "{{ json.a }}", "{{ key }}": ["{{ json.name }}", 5, "plain"], "n": None}
    compiled = compile_value(value)
    assert not compiled.is_static
    assert compiled.evaluate(ctx, 1) == {"a": 4, "{{ key }}": ["Bob", 5, "plain"], "n": None}


def test_constants_are_static_and_returned_as_is(ctx: EvalContext) -> None:
    for value in ("plain", 5, None, {"a": ["b", {"c": 1}]}, ["x"], True):
        compiled = compile_value(value)
        assert compiled.is_static
        assert compiled.evaluate(ctx, 0) is value


def test_same_text_compiles_once() -> None:
    assert compile_value("{{ json.a + 1 }}") is compile_value("{{ json.a + 1 }}")
    assert compile_value("n={{ json.a }}") is compile_value("n={{ json.a }}")


def test_has_expression() -> None:
    assert has_expression("{{ json.a }}")
    assert has_expression({"k": ["x", "a {{ b }}"]})
    assert not has_expression({"{{ key }}": "value"})
    assert not has_expression(["a", 1, None, {"b": "c"}])


def test_expression_problems_lists_every_bad_expression() -> None:
    assert expression_problems({"a": "{{ json.a }}", "b": ["x {{ index }}"]}) == []
    problems = expression_problems({"a": "{{ json. }}", "b": ["{{ open('/x') }}"], "c": 5})
    assert len(problems) == 2
    assert "json." in problems[0]
    assert "open" in problems[1]
    assert expression_problems("{{ json.a ") == [
        "'{{' is not closed by '}}' in expression '{{ json.a '"
    ]


def test_empty_input_sees_an_empty_json() -> None:
    ctx = make_ctx(items=[])
    assert ev("{{ json }}", ctx) == {}
    assert ev("{{ json.a }}", ctx) is None
    assert ev("{{ items }}", ctx) == []
    assert ev("{{ binary }}", ctx) == {}


# --- names ----------------------------------------------------------------------------------


def test_json_reads_keys_by_attribute_and_subscript(ctx: EvalContext) -> None:
    assert ev('{{ json["first name"] }}', ctx) == "A"
    assert ev("{{ json['order']['lines'][1]['sku'] }}", ctx) == "B-2"
    assert ev("{{ json.order.lines[-1].qty }}", ctx) == 3
    assert ev("{{ json['_id'] }}", ctx) == "x1"
    key = "status"
    assert ev(f"{{{{ json.order[{key!r}] }}}}", ctx) == "paid"


def test_missing_keys_read_as_none(ctx: EvalContext) -> None:
    assert ev("{{ json.missing }}", ctx) is None
    assert ev("{{ json['missing'] }}", ctx) is None
    assert ev("{{ json.order.lines[5] }}", ctx) is None
    assert ev("{{ json.missing or 'default' }}", ctx) == "default"
    assert ev("{{ json.get('missing', 0) }}", ctx) == 0


def test_reading_through_none_names_the_null_part(ctx: EvalContext) -> None:
    error = fails("{{ json.missing.x }}", ctx)
    assert "cannot read 'x' of json.missing (null)" in str(error)
    assert error.expression == "json.missing.x"
    assert "json.missing" in str(fails("{{ json.missing[0] }}", ctx))


def test_keys_win_over_methods_except_in_calls(ctx: EvalContext) -> None:
    ctx = make_ctx(items=[{"json": {"d": {"items": [1, 2], "get": "key", "n": 1}}}])
    assert ev("{{ json.d.items }}", ctx) == [1, 2]
    assert ev("{{ json.d.get }}", ctx) == "key"
    assert ev("{{ json.d.items() }}", ctx) == [["items", [1, 2]], ["get", "key"], ["n", 1]]
    assert ev("{{ json.d.get('n') }}", ctx) == 1
    assert ev("{{ json.d.keys }}", ctx) is None


def test_index_items_binary(ctx: EvalContext) -> None:
    assert ev("{{ index }}", ctx, 1) == 1
    assert ev("{{ items }}", ctx) == [it["json"] for it in ctx.items]
    assert ev("{{ len(items) }}", ctx) == 2
    assert ev("{{ items[1].name }}", ctx) == "Bob"
    assert ev("{{ binary.file.size }}", ctx, 1) == 3
    assert ev("{{ binary }}", ctx, 0) == {}


def test_items_json_list_is_built_once_per_context(ctx: EvalContext) -> None:
    assert ev("{{ items }}", ctx, 0) is ev("{{ items }}", ctx, 1)


def test_workflow_execution_vars(ctx: EvalContext) -> None:
    assert ev("{{ workflow.name }}", ctx) == "Orders"
    assert ev("{{ workflow.active }}", ctx) is True
    assert ev("{{ execution.id }}-{{ execution.mode }}", ctx) == "e1-cli"
    assert ev("{{ execution.resume_url }}", ctx) is None
    assert ev("{{ vars.region }}", ctx) == "eu"
    assert ev("{{ vars['limit'] * 2 }}", ctx) == 10


def test_node_helper(ctx: EvalContext) -> None:
    assert ev("{{ node('Fetch').json }}", ctx, 1) == {"n": 2}
    assert ev("{{ node('Single').json.n }}", ctx, 1) == 10
    assert ev("{{ node('Fetch').items }}", ctx) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert ev("{{ node('Fetch').all() }}", ctx) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert ev("{{ node('Fetch').first().n }}", ctx) == 1
    assert ev("{{ node('Fetch').last().n }}", ctx) == 3
    assert ev("{{ node('Fetch').ran }}", ctx) is True
    assert ev("{{ [x.n * 10 for x in node('Fetch').items] }}", ctx) == [10, 20, 30]
    assert ev("{{ node('Empty').ran }}", ctx) is True
    assert ev("{{ node('Empty').json }}", ctx) is None
    assert ev("{{ node('Nope').ran }}", ctx) is False
    assert ev("{{ node('Nope').json }}", ctx) is None
    assert ev("{{ node('Nope').items }}", ctx) == []
    assert ev("{{ node('Nope').first() }}", ctx) is None
    assert "is a node, not a value" in str(fails("{{ node('Fetch') }}", ctx))
    assert "is a node, not a value" in str(fails("x {{ node('Fetch') }}", ctx))


def test_now_and_today_use_the_workflow_timezone(ctx: EvalContext) -> None:
    assert ev("{{ now().hour }}", ctx) == 12
    assert ev("{{ now().tzname() }}", ctx) == "CEST"
    assert ev("{{ today().day }}", ctx) == 1
    late = make_ctx(now=lambda: dt.datetime(2024, 5, 1, 23, 30, tzinfo=dt.UTC))
    assert ev("{{ today().isoformat() }}", late) == "2024-05-02"
    naive = make_ctx(now=lambda: dt.datetime(2024, 5, 1, 9, 0))
    assert ev("{{ now() }}", naive) == "2024-05-01T09:00:00+02:00"


def test_now_defaults_to_the_real_clock() -> None:
    ctx = make_ctx(now=None, timezone=dt.UTC)
    before = dt.datetime.now(dt.UTC)
    value = dt.datetime.fromisoformat(ev("{{ now() }}", ctx))
    assert before <= value <= dt.datetime.now(dt.UTC)


# --- operators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ json.a * 2 + 1 }}", 7),
        ("{{ 7 / 2 }}", 3.5),
        ("{{ 7 // 2 }}", 3),
        ("{{ 7 % 3 }}", 1),
        ("{{ 2 ** 10 }}", 1024),
        ("{{ 2 ** -1 }}", 0.5),
        ("{{ -json.a }}", -3),
        ("{{ +json.a }}", 3),
        ("{{ 6 & 3 | 8 ^ 1 }}", 11),
        ("{{ 1 << 4 >> 2 }}", 4),
        ("{{ ~5 }}", -6),
        ("{{ 'ab' + 'cd' }}", "abcd"),
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ [0] * 3 }}", [0, 0, 0]),
        ("{{ 1 < json.a <= 3 }}", True),
        ("{{ 'a' in json.name.lower() }}", True),
        ("{{ 'x' not in json.order.lines[0].sku }}", True),
        ("{{ 'status' in json.order }}", True),
        ("{{ 2 in [1, 2] }}", True),
        ("{{ json.missing is None }}", True),
        ("{{ json.a is not null }}", True),
        ("{{ json.a if json.a > 2 else 'small' }}", 3),
        ("{{ json.missing and json.missing.x }}", None),
        ("{{ json.a or 9 }}", 3),
        ("{{ json.name == 'Ann' }}", True),
        ("{{ json.name != 'Ann' }}", False),
        ("{{ [1, 2] == [1, 2] }}", True),
        ("{{ 'b' > 'a' }}", True),
        ("{{ json.order.lines[0:1] }}", [ORDER["lines"][0]]),
        ("{{ json.name[::-1] }}", "nnA"),
        ("{{ json.name[1:] }}", "nn"),
        ("{{ json.name[10] }}", None),
    ],
)
def test_operators(text: str, expected: Any, ctx: EvalContext) -> None:
    assert ev(text, ctx) == expected


def test_date_arithmetic(ctx: EvalContext) -> None:
    assert ev("{{ (now() + timedelta(days=1)).day }}", ctx) == 2
    assert ev("{{ (now() - timedelta(hours=13)).day }}", ctx) == 30
    assert ev("{{ (now() - datetime('2024-04-30T12:00:00+02:00')).days }}", ctx) == 1
    assert ev("{{ (today() - timedelta(weeks=1)).isoformat() }}", ctx) == "2024-04-24"
    assert ev("{{ now() > datetime('2024-01-01') }}", ctx) is True
    assert ev("{{ (timedelta(hours=1) * 2).seconds }}", ctx) == 7200
    assert ev("{{ timedelta(hours=3) / timedelta(hours=1) }}", ctx) == 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ 'a' + 1 }}", "cannot add text and number: convert with str() first"),
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ 1 % 0 }}", "division by zero"),
        ("{{ json.name - 1 }}", "cannot subtract text and number"),
        ("{{ json.name < 1 }}", "cannot compare text < number"),
        ("{{ json.missing + 1 }}", "cannot add null and number"),
        ("{{ 1 in 5 }}", "cannot use 'in' with number"),
        ("{{ 1 in 'abc' }}", "'in' on text needs text on the left"),
        ("{{ json.order.lines['a'] }}", "takes whole-number positions, got text"),
        ("{{ json.name.x }}", "cannot read 'x' of json.name (text)"),
        ("{{ json.name.upper }}", "'upper' is a method of text"),
        ("{{ json.a[0] }}", "cannot read [0] of json.a (number)"),
        ("{{ json.name[::0] }}", "slice step cannot be zero"),
        ("{{ json.a[1:2] }}", "cannot slice json.a (number)"),
        ("{{ [x for x in 5] }}", "cannot loop over number"),
        ("{{ [a for a, b in [[1]]] }}", "cannot unpack a value into 2 loop variables"),
        ("{{ (-8) ** 0.5 }}", "the result is not a real number"),
        ("{{ 2.0 ** 5000 }}", "a number is out of range"),
        ("{{ 1.5 & 1 }}", "whole numbers only"),
    ],
)
def test_evaluation_errors_name_the_expression(text: str, message: str, ctx: EvalContext) -> None:
    error = fails(text, ctx)
    assert message in error.reason
    source = text[text.index("{{") + 2 : text.rindex("}}")].strip()
    assert error.expression == source
    assert str(error).endswith(f"in expression {source!r}")


def test_template_errors_name_the_failing_part(ctx: EvalContext) -> None:
    error = fails("a {{ json.a }} b {{ json.missing.x }} c", ctx)
    assert error.expression == "json.missing.x"


# --- functions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ len(json.name) }}", 3),
        ("{{ len(json.order.lines) }}", 2),
        ("{{ len(json.order) }}", 4),
        ("{{ str(json.a) + '!' }}", "3!"),
        ("{{ str(None) }}", ""),
        ("{{ str(true) }}", "true"),
        ("{{ str([1, 'a']) }}", '[1, "a"]'),
        ("{{ int('42') + int(' 8 ') }}", 50),
        ("{{ int(3.9) }}", 3),
        ("{{ int('ff', 16) }}", 255),
        ("{{ float('1.5') }}", 1.5),
        ("{{ bool('') }}", False),
        ("{{ bool([0]) }}", True),
        ("{{ round(2.567, 2) }}", 2.57),
        ("{{ round(2.5) }}", 2),
        ("{{ abs(-4) }}", 4),
        ("{{ abs(timedelta(hours=-1)).days }}", 0),
        ("{{ min(3, 1, 2) }}", 1),
        ("{{ max([3, 1, 2]) }}", 3),
        ("{{ max([], default=0) }}", 0),
        ("{{ min(json.order.lines, key='price').sku }}", "B-2"),
        ("{{ sum([1, 2, 3]) }}", 6),
        ("{{ sum([l.qty * l.price for l in json.order.lines]) }}", 35),
        ("{{ sorted([3, 1, 2]) }}", [1, 2, 3]),
        ("{{ sorted(['b', 'a'], reverse=true) }}", ["b", "a"]),
        ("{{ [l.sku for l in sorted(json.order.lines, key='price')] }}", ["B-2", "A-1"]),
        ("{{ any([0, 1]) }}", True),
        ("{{ all([1, 0]) }}", False),
        ("{{ all(x > 0 for x in [1, 2]) }}", True),
        ("{{ range(3) }}", [0, 1, 2]),
        ("{{ range(1, 10, 4) }}", [1, 5, 9]),
        ("{{ json_dumps({'a': [1, 'é']}) }}", '{"a": [1, "é"]}'),
        ("{{ json_dumps({'a': 1}, indent=2) }}", '{\n  "a": 1\n}'),
        ("{{ json_dumps(now()) }}", '"2024-05-01T12:00:00+02:00"'),
        ("{{ json_loads('{\"a\": [1, null]}') }}", {"a": [1, None]}),
        ("{{ b64encode('héllo') }}", base64.b64encode("héllo".encode()).decode()),
        ("{{ b64decode(b64encode('héllo')) }}", "héllo"),
        ("{{ md5('abc') }}", hashlib.md5(b"abc").hexdigest()),
        ("{{ sha256('abc') }}", hashlib.sha256(b"abc").hexdigest()),
        ("{{ jmespath('lines[?qty > `2`].sku', json.order) }}", ["B-2"]),
        ("{{ jmespath('[*].name', items) }}", ["Ann", "Bob"]),
        ("{{ list('ab') }}", ["a", "b"]),
        ("{{ list(json.order)[0] }}", "id"),
        ("{{ dict(a=1, b=2) }}", {"a": 1, "b": 2}),
        ("{{ dict([['a', 1]]) }}", {"a": 1}),
        ("{{ dict({'a': 1}, b=2) }}", {"a": 1, "b": 2}),
    ],
)
def test_functions(text: str, expected: Any, ctx: EvalContext) -> None:
    assert ev(text, ctx) == expected


def test_datetime_and_timedelta(ctx: EvalContext) -> None:
    assert ev("{{ datetime('2024-03-01T08:00:00') }}", ctx) == "2024-03-01T08:00:00+01:00"
    assert ev("{{ datetime('2024-03-01T08:00:00Z') }}", ctx) == "2024-03-01T08:00:00+00:00"
    assert ev("{{ datetime('2024-03-01').hour }}", ctx) == 0
    assert ev("{{ datetime(0) }}", ctx) == "1970-01-01T01:00:00+01:00"
    assert ev("{{ datetime(today()) }}", ctx) == "2024-05-01T00:00:00+02:00"
    assert ev("{{ timedelta(1).days }}", ctx) == 1
    delta = "{{ timedelta(weeks=1, days=1, hours=1, minutes=1, seconds=1, milliseconds=500) }}"
    assert ev(delta, ctx) == 8 * 86400 + 3661.5
    assert "ISO 8601" in str(fails("{{ datetime('yesterday') }}", ctx))
    assert "needs a number" in str(fails("{{ timedelta(days='1') }}", ctx))


def test_uuid4(ctx: EvalContext) -> None:
    first = ev("{{ uuid4() }}", ctx)
    assert uuid.UUID(first).version == 4
    assert ev("{{ uuid4() }}", ctx) != first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ len(5) }}", "len() needs text, a list or an object"),
        ("{{ int('x') }}", "invalid literal"),
        ("{{ int([]) }}", "int() needs text or a number"),
        ("{{ float(None) }}", "float() needs text or a number"),
        ("{{ round('1') }}", "round() needs a number"),
        ("{{ min([]) }}", "min() of an empty list"),
        ("{{ max([1, 'a']) }}", "cannot compare values of different types"),
        ("{{ sum(['a']) }}", "sum() needs numbers, found text"),
        ("{{ sum([[1]], []) }}", "sum() start must be a number"),
        ("{{ sorted([1, 'a']) }}", "cannot compare values of different types"),
        ("{{ sorted([1], key=1) }}", "key must be a field name"),
        ("{{ sorted([1], reverse='yes') }}", "reverse must be true or false"),
        ("{{ range(0, 5, 0) }}", "range() step cannot be zero"),
        ("{{ range('3') }}", "range() needs a whole number"),
        ("{{ json_loads('{') }}", "json_loads(): not valid JSON"),
        ("{{ json_dumps(1, indent=99) }}", "indent must be between 0 and 16"),
        ("{{ b64decode('/w==') }}", "not UTF-8 text"),
        ("{{ b64decode('abc') }}", "not valid base64"),
        ("{{ md5(1) }}", "md5() needs text"),
        ("{{ jmespath('[', json) }}", "jmespath()"),
        ("{{ dict([1]) }}", "dict() needs an object or a list of [key, value] pairs"),
        ("{{ node(1) }}", "node() needs text"),
    ],
)
def test_function_errors(text: str, message: str, ctx: EvalContext) -> None:
    assert message in fails(text, ctx).reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ len() }}", "len() takes 1 argument(s), got 0"),
        ("{{ len(1, 2) }}", "len() takes 1 argument(s), got 2"),
        ("{{ range() }}", "range() takes 1 to 3 argument(s), got 0"),
        ("{{ sorted([1], cmp=1) }}", "sorted() has no argument 'cmp' (keywords: key, reverse)"),
        ("{{ round(1, x=1) }}", "round() has no argument 'x' (keywords: none)"),
        ("{{ print(1) }}", "function 'print' is not available"),
        ("{{ json() }}", "'json' is not a function"),
        ("{{ len }}", "'len' is a function: call it"),
        ("{{ foo }}", "name 'foo' is not defined"),
        ("{{ json.a + }}", "syntax error"),
        ("{{ }}", "empty expression"),
        ("{{ json.a ", "'{{' is not closed by '}}'"),
        ("{{ 1j }}", "complex literals are not allowed"),
        ("{{ b'x' }}", "bytes literals are not allowed"),
        ("{{ ... }}", "ellipsis literals are not allowed"),
        ("{{ {1, 2} }}", "sets are not supported"),
        ("{{ f'{json.a}' }}", "f-strings are not supported"),
        ("{{ json.a is 3 }}", "'is' compares with None, True or False only"),
        ("{{ json[1, 2] }}", "subscripts take one key or position"),
        ("{{ [1 for json in items] }}", "'json' cannot be used as a loop variable"),
        ("{{ [1 for a, a in items] }}", "loop variables must be distinct names"),
        ("{{ [1 for a.b in items] }}", "loop variables must be plain names"),
        ("{{ json.a @ 2 }}", "the operator MatMult is not allowed"),
    ],
)
def test_compile_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_value(text)
    assert message in str(info.value)
    assert info.value.expression is not None


# --- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ ' Ab '.strip().upper() }}", "AB"),
        ("{{ 'Ab'.lower() }}", "ab"),
        ("{{ 'xxAbx'.lstrip('x').rstrip('x') }}", "Ab"),
        ("{{ 'a,b,c'.split(',') }}", ["a", "b", "c"]),
        ("{{ 'a,b,c'.split(',', 1) }}", ["a", "b,c"]),
        ("{{ 'a,b,c'.split(sep=',', maxsplit=1) }}", ["a", "b,c"]),
        ("{{ 'a,b,c'.rsplit(',', 1) }}", ["a,b", "c"]),
        ("{{ 'a\\nb'.splitlines() }}", ["a", "b"]),
        ("{{ 'aXbX'.replace('X', '-') }}", "a-b-"),
        ("{{ 'aXbX'.replace('X', '-', 1) }}", "a-bX"),
        ("{{ 'abc'.startswith('ab') and 'abc'.endswith(('x', 'c')) }}", True),
        ("{{ 'hello world'.title() }}", "Hello World"),
        ("{{ 'hello'.capitalize() }}", "Hello"),
        ("{{ 'hello'.find('l') }}", 2),
        ("{{ 'hello'.rfind('l') }}", 3),
        ("{{ 'hello'.count('l') }}", 2),
        ("{{ ', '.join(['a', 'b']) }}", "a, b"),
        ("{{ '-'.join(json.order) }}", "id-total-status-lines"),
        ("{{ '12'.isdigit() and 'ab'.isalpha() }}", True),
        ("{{ '7'.zfill(3) }}", "007"),
        ("{{ 'a'.ljust(3, '.') + 'b'.rjust(2) + 'c'.center(3) }}", "a.. b c "),
        ("{{ 'k=v'.partition('=') }}", ["k", "=", "v"]),
        ("{{ 'a=b=c'.rpartition('=')[2] }}", "c"),
        ("{{ 'pre-x'.removeprefix('pre-') + 'y.txt'.removesuffix('.txt') }}", "xy"),
        ("{{ 'ß'.casefold() }}", "ss"),
        ("{{ 'aB'.swapcase() }}", "Ab"),
        ("{{ [1, 2, 2].count(2) }}", 2),
        ("{{ [1, 2, 3].index(3) }}", 2),
        ("{{ (1, 2).index(2) }}", 1),
        ("{{ json.order.get('status') }}", "paid"),
        ("{{ json.order.get('nope', 'dflt') }}", "dflt"),
        ("{{ json.order.keys() }}", ["id", "total", "status", "lines"]),
        ("{{ len(json.order.values()) }}", 4),
        (
            "{{ {k: v for k, v in json.order.items() if k != 'lines'} }}",
            {
                "id": 7,
                "total": 120.5,
                "status": "paid",
            },
        ),
        ("{{ now().isoformat() }}", "2024-05-01T12:00:00+02:00"),
        ("{{ now().isoformat(timespec='minutes') }}", "2024-05-01T12:00+02:00"),
        ("{{ now().strftime('%Y/%m/%d %H:%M %%') }}", "2024/05/01 12:00 %"),
        ("{{ now().date().isoformat() }}", "2024-05-01"),
        ("{{ now().weekday() }}", 2),
        ("{{ now().isoweekday() }}", 3),
        ("{{ now().timestamp() }}", FIXED_NOW.timestamp()),
        ("{{ now().replace(hour=0, minute=5).isoformat() }}", "2024-05-01T00:05:00+02:00"),
        ("{{ now().astimezone('America/New_York').hour }}", 6),
        ("{{ now().astimezone('UTC').isoformat() }}", "2024-05-01T10:00:00+00:00"),
        ("{{ datetime('2024-05-01T10:00Z').astimezone().hour }}", 12),
        (
            "{{ [now().year, now().month, now().day, now().minute, now().second] }}",
            [
                2024,
                5,
                1,
                0,
                0,
            ],
        ),
        ("{{ now().microsecond }}", 0),
        ("{{ today().strftime('%d.%m.%Y') }}", "01.05.2024"),
        ("{{ today().replace(day=9).weekday() }}", 3),
        ("{{ [today().year, today().month] }}", [2024, 5]),
        ("{{ today().isoweekday() }}", 3),
        ("{{ timedelta(days=1, seconds=5).total_seconds() }}", 86405.0),
        ("{{ timedelta(days=1, seconds=5).seconds }}", 5),
        ("{{ timedelta(milliseconds=2).microseconds }}", 2000),
    ],
)
def test_allowed_methods(text: str, expected: Any, ctx: EvalContext) -> None:
    assert ev(text, ctx) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ ['a'].join(',') }}", "has no method 'join'; use ', '.join(list)"),
        ("{{ json.a.upper() }}", "json.a (number) has no method 'upper'"),
        ("{{ json.order.strip() }}", "json.order (object) has no method 'strip'"),
        ("{{ [1].index(5) }}", "5 is not in the list"),
        ("{{ now().strftime('%10Y') }}", "plain %-directives"),
        ("{{ now().strftime(5) }}", "strftime() needs text"),
        ("{{ now().astimezone('Mars/Base') }}", "unknown time zone 'Mars/Base'"),
        ("{{ now().astimezone('../../etc/passwd') }}", "is not a time zone name"),
        ("{{ now().replace(tzinfo=null) }}", "replace() takes"),
        ("{{ now().replace(year='x') }}", "needs a whole number"),
        ("{{ 'a'.replace(1, 'b') }}", "replace() needs text"),
        ("{{ 'a'.zfill('3') }}", "padding needs a whole number"),
        ("{{ 'a'.join([1]) }}", "join() needs a list of text, found number"),
        ("{{ json.missing.get('a') }}", "json.missing (null) has no method 'get'"),
    ],
)
def test_method_errors(text: str, message: str, ctx: EvalContext) -> None:
    assert message in fails(text, ctx).reason


# --- comprehensions -------------------------------------------------------------------------


def test_comprehensions(ctx: EvalContext) -> None:
    assert ev("{{ [x * 2 for x in range(4) if x % 2] }}", ctx) == [2, 6]
    assert ev("{{ [[x, y] for x in range(2) for y in range(x + 1)] }}", ctx) == [
        [0, 0],
        [1, 0],
        [1, 1],
    ]
    assert ev("{{ {l.sku: l.qty for l in json.order.lines} }}", ctx) == {"A-1": 2, "B-2": 3}
    assert ev("{{ [c for c in 'ab'] }}", ctx) == ["a", "b"]
    assert ev("{{ [k for k in json.order if k != 'lines'] }}", ctx) == ["id", "total", "status"]
    assert ev("{{ sum(l.qty for l in json.order.lines) }}", ctx) == 5
    # an inner loop variable does not leak into or clobber the outer one
    assert ev("{{ [[x for x in range(2)] + [x] for x in [7]] }}", ctx) == [[0, 1, 7]]
    assert "not defined" in str(fails("{{ [x for x in range(2)] + [x] }}", ctx))


def test_comprehension_values_are_per_evaluation(ctx: EvalContext) -> None:
    text = "{{ [json.a + x for x in range(2)] }}"
    assert ev(text, ctx, 0) == [3, 4]
    assert ev(text, ctx, 1) == [4, 5]


# --- the evaluator ---------------------------------------------------------------------------


def test_evaluate_after_an_error_starts_clean(ctx: EvalContext) -> None:
    compiled = compile_value("{{ [x for x in range(json.n)] }}")
    big = make_ctx(items=[{"json": {"n": 10_000}}] * 2)
    for _ in range(MAX_STEPS // 10_000 + 5):
        compiled.evaluate(big, 0)  # more steps in total than one evaluation may take
    with pytest.raises(ExpressionError):
        compiled.evaluate(make_ctx(items=[{"json": {"n": "x"}}]), 0)
    assert compiled.evaluate(make_ctx(items=[{"json": {"n": 2}}]), 0) == [0, 1]


def test_evaluations_do_not_keep_items_alive(ctx: EvalContext) -> None:
    import gc
    import weakref

    class Items(list[dict[str, Any]]):
        pass

    items = Items([{"json": {"a": 1}}])
    ref = weakref.ref(items)
    compiled = compile_value("{{ json.a + 1 }}")
    assert compiled.evaluate(make_ctx(items=items), 0) == 2
    del items
    gc.collect()
    assert ref() is None


def test_json_rendering_of_large_shared_values_is_bounded(ctx: EvalContext) -> None:
    ctx = make_ctx(items=[{"json": {"big": "x" * 100_000}}])
    assert len(ev("{{ json_dumps([json.big] * 10) }}", ctx)) == 10 * 100_002 + 2 + 9 * 2
    error = fails("{{ json_dumps([json.big] * 1000) }}", ctx)
    assert "too large" in error.reason


def test_strings_and_lists_from_item_data_pass_through(ctx: EvalContext) -> None:
    body = "y" * 2_000_000
    big = make_ctx(items=[{"json": {"body": body}}])
    assert ev("{{ json.body }}", big) is body
    assert ev("{{ len(json.body.upper()) }}", big) == 2_000_000
    assert ev("x{{ json.body }}", big) == "x" + body


def test_json_output_of_rendering_is_valid_json(ctx: EvalContext) -> None:
    rendered = ev("{{ json_dumps(json) }}", ctx)
    assert json.loads(rendered) == ctx.items[0]["json"]


def test_lenient_literals_raise_no_warnings(ctx: EvalContext) -> None:
    # pytest turns warnings into errors here, so a leaked SyntaxWarning would fail the test
    assert ev("{{ '\\d+' }}", ctx) == "\\d+"
    assert ev("{{ 1if true else 2 }}", ctx) == 1


def test_naive_datetimes_in_data_mean_the_workflow_timezone() -> None:
    ctx = make_ctx(items=[{"json": {"at": dt.datetime(2024, 1, 1, 12, 0)}}])
    assert ev("{{ json.at.astimezone('UTC').hour }}", ctx) == 11
    assert (
        ev("{{ json.at.timestamp() }}", ctx)
        == dt.datetime(2024, 1, 1, 11, tzinfo=dt.UTC).timestamp()
    )
    assert ev("{{ json.at }}", ctx) == "2024-01-01T12:00:00"


def test_deeply_nested_parameter_values_are_refused_not_crashed() -> None:
    value: Any = "{{ json.a }}"
    for _ in range(2000):
        value = [value]
    assert has_expression(value)
    assert expression_problems(value) == ["the parameter value is nested more than 200 levels"]
    with pytest.raises(ExpressionError):
        compile_value(value)


@pytest.mark.parametrize(
    "path",
    ["json.v", "json.v.a", "json.v[0]", "json.v[-1].a", "json.v[5]", "json.v.a.b", "json['v'][1]"],
)
@pytest.mark.parametrize(
    "data",
    [None, 1, "ab", [], [{"a": 1}, {"a": [2]}], {"a": {"b": None}}, {"a": "x"}, [[1], 2]],
)
def test_plain_paths_match_the_general_evaluator(path: str, data: Any) -> None:
    """`json.a.b` has a fast path; it must agree with the general one, errors included."""
    ctx = make_ctx(items=[{"json": {"v": data}}])

    def outcome(text: str) -> Any:
        try:
            return ev(text, ctx)
        except ExpressionError as exc:
            return ("error", exc.reason)

    assert outcome("{{ " + path + " }}") == outcome("{{ " + path + " if true else 0 }}")
