"""Condition operators and checks (flowlite.nodes.conditions), directly and through `if`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flowlite.errors import NodeError, WorkflowInvalid
from flowlite.nodes.conditions import MAX_PATTERN, MAX_SUBJECT, OPS, check_conditions, compare
from flowlite.testing import run_node


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("eq", 5, 5, True),
        ("eq", "5", 5, True),
        ("eq", 5, "5.0", True),
        ("eq", "5", "5.0", False),  # two strings compare as text
        ("eq", "a", "a", True),
        ("eq", True, 1, False),  # a boolean equals only a boolean
        ("eq", True, True, True),
        ("eq", None, None, True),
        ("eq", {"a": [1]}, {"a": [1]}, True),
        ("ne", "5", 5, False),
        ("ne", "x", "y", True),
        ("gt", "10", 9, True),
        ("gt", "10", "9", False),  # text order
        ("gt", 3.5, 3, True),
        ("gte", 3, "3", True),
        ("lt", -1, " 0 ", True),
        ("lte", 2, 2.0, True),
        ("gt", None, 1, False),
        ("lt", 1, None, False),
        ("gt", "b", "a", True),
        ("gt", "12345678901234567891", 12345678901234567890, True),  # exact integers
        ("contains", "hello world", "lo w", True),
        ("contains", "hello", "x", False),
        ("contains", [1, 2, 3], "2", True),
        ("contains", [1, 2, 3], 4, False),
        ("contains", {"a": 1}, "a", True),
        ("contains", 12345, 234, True),
        ("contains", None, "a", False),
        ("not_contains", "abc", "d", True),
        ("not_contains", ["x"], "x", False),
        ("starts_with", "invoice-7", "invoice", True),
        ("starts_with", 123, 12, True),
        ("starts_with", None, "a", False),
        ("ends_with", "a.pdf", ".pdf", True),
        ("ends_with", "a.pdf", ".png", False),
        ("matches", "order 42", r"\d+", True),
        ("matches", "order", r"^\d+$", False),
        ("matches", None, "x", False),
        ("in", "b", ["a", "b"], True),
        ("in", 2, ["1", "2"], True),
        ("in", "ell", "hello", True),
        ("in", "k", {"k": 1}, True),
        ("in", "z", ["a"], False),
        ("in", "a", None, False),
        ("exists", 0, None, True),
        ("exists", "", None, True),
        ("exists", False, None, True),
        ("exists", None, None, False),
        ("not_exists", None, None, True),
        ("not_exists", [], None, False),
        ("empty", None, None, True),
        ("empty", "", None, True),
        ("empty", [], None, True),
        ("empty", {}, None, True),
        ("empty", 0, None, False),
        ("empty", " ", None, False),
        ("not_empty", [0], None, True),
        ("is_true", True, None, True),
        ("is_true", "TRUE", None, True),
        ("is_true", 1, None, False),
        ("is_false", False, None, True),
        ("is_false", "false", None, True),
        ("is_false", None, None, False),
        ("is_number", 1.5, None, True),
        ("is_number", True, None, False),
        ("is_number", "1", None, False),
        ("is_string", "1", None, True),
        ("is_list", [], None, True),
        ("is_list", {}, None, False),
        ("is_object", {}, None, True),
        ("is_object", [], None, False),
    ],
)
def test_operators(op: str, left: Any, right: Any, expected: bool) -> None:
    assert compare(op, left, right) is expected


def test_dates_compare_with_iso_strings() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert compare("gt", when, "2026-01-01T00:00:00+00:00")
    assert compare("eq", dt.date(2026, 1, 2), "2026-01-02")
    assert compare("lt", "2025-12-31", dt.date(2026, 1, 1))


@pytest.mark.parametrize(
    ("op", "left", "right", "message"),
    [
        ("gt", "abc", 5, "cannot order text 'abc' against number 5 with 'gt'"),
        ("lt", [1], "x", "cannot order list [1] against text 'x'"),
        ("gte", True, 1, "cannot order boolean True against number 1"),
        ("contains", True, "x", "'contains' needs text, a list or an object on the left"),
        ("starts_with", ["a"], "a", "'starts_with' needs text on the left, got list"),
        ("ends_with", "a", None, "'ends_with' needs text on the right, got null"),
        ("in", "a", 5, "'in' needs a list, text or an object on the right, got number"),
        ("matches", "a", 5, "'matches' needs a regex text on the right, got number"),
        ("matches", "a", "(", "bad regex '('"),
        ("nope", 1, 1, "unknown operator 'nope'"),
    ],
)
def test_operator_errors_name_the_problem(op: str, left: Any, right: Any, message: str) -> None:
    with pytest.raises(NodeError) as caught:
        compare(op, left, right)
    assert message in caught.value.message


@pytest.mark.parametrize(
    "pattern", [r"(a+)+$", r"(a*)*b", r"(\w+\s?)*$", r"^(x+x+)+y", r"((ab)*)+c", r"(?:a|(b+))*"]
)
def test_catastrophic_regexes_are_refused(pattern: str) -> None:
    with pytest.raises(NodeError) as caught:
        compare("matches", "a" * 40 + "!", pattern)
    assert "repeats a group of repeats" in caught.value.message


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        (r"^(\d+,)*\d+$", "1,22,333"),
        (r"^[\w.+-]+@([\w-]+\.)+[\w-]{2,}$", "a.b@mail.example.org"),
        (r"^(?>a+)+$", "aaaa"),
        (r"^(?:a+)++$", "aaaa"),
        (r"(\d{3}-)*\d{4}", "555-1234"),
    ],
)
def test_ordinary_regexes_are_accepted(pattern: str, subject: str) -> None:
    assert compare("matches", subject, pattern)


def test_regex_length_caps() -> None:
    with pytest.raises(NodeError, match=f"longer than {MAX_PATTERN}"):
        compare("matches", "a", "a" * (MAX_PATTERN + 1))
    with pytest.raises(NodeError, match=f"at most {MAX_SUBJECT} characters"):
        compare("matches", "a" * (MAX_SUBJECT + 1), "a")
    assert compare("matches", "x" * (MAX_SUBJECT - 3) + "end", "end$")


def test_check_conditions() -> None:
    assert check_conditions({"condition": "{{ json.a }}"}) == []
    assert check_conditions({}) == [
        ("condition", "give exactly one of `condition` or `conditions`")
    ]
    assert check_conditions({"condition": True, "conditions": []}) == [
        ("condition", "give exactly one of `condition` or `conditions`")
    ]
    assert check_conditions({"conditions": []}, "rules[0]") == [
        ("rules[0].conditions", "must hold at least one condition")
    ]
    problems = check_conditions(
        {
            "conditions": [
                {"left": 1, "op": "eq"},
                {"left": 1, "op": "exists"},
                {"left": "a", "op": "matches", "right": "(a+)+"},
                {"left": "a", "op": "matches", "right": "{{ json.pattern }}"},
            ]
        }
    )
    assert [p[0] for p in problems] == ["conditions[0].right", "conditions[2].right"]
    assert "operator 'eq' needs `right`" in problems[0][1]
    assert "repeats a group of repeats" in problems[2 - 1][1]
    assert "in" in OPS and len(OPS) == 22


# --- through a node ----------------------------------------------------------------------


async def test_conditions_evaluate_left_and_right_per_item() -> None:
    result = await run_node(
        "if",
        {"conditions": [{"left": "{{ json.total }}", "op": "gt", "right": "{{ json.limit }}"}]},
        [{"total": 10, "limit": 5}, {"total": "3", "limit": 5}, {"total": 7, "limit": "7"}],
    )
    assert result.json("true") == [{"total": 10, "limit": 5}]
    assert result.json("false") == [{"total": "3", "limit": 5}, {"total": 7, "limit": "7"}]


async def test_combine_and_or() -> None:
    conditions = [
        {"left": "{{ json.a }}", "op": "eq", "right": 1},
        {"left": "{{ json.b }}", "op": "eq", "right": 1},
    ]
    items = [{"a": 1, "b": 1}, {"a": 1, "b": 0}, {"a": 0, "b": 0}]
    both = await run_node("if", {"conditions": conditions}, items)
    assert both.json("true") == [{"a": 1, "b": 1}]
    either = await run_node("if", {"conditions": conditions, "combine": "or"}, items)
    assert either.json("true") == [{"a": 1, "b": 1}, {"a": 1, "b": 0}]
    assert either.json("false") == [{"a": 0, "b": 0}]


async def test_exists_treats_missing_and_null_as_absent() -> None:
    result = await run_node(
        "filter",
        {"conditions": [{"left": "{{ json.email }}", "op": "exists"}]},
        [{"email": "a@x"}, {"email": None}, {}, {"email": ""}],
    )
    assert result.json("kept") == [{"email": "a@x"}, {"email": ""}]
    assert result.json("discarded") == [{"email": None}, {}]


async def test_dynamic_regex_is_checked_per_item() -> None:
    result = await run_node(
        "if",
        {"conditions": [{"left": "{{ json.s }}", "op": "matches", "right": "{{ json.p }}"}]},
        [{"s": "abc", "p": "^a"}, {"s": "abc", "p": "(x+)+"}],
        on_error="continue",
    )
    assert result.json("true")[0] == {"s": "abc", "p": "^a"}
    failed = result.json("true")[1]
    assert failed["s"] == "abc" and "conditions[0] (matches)" in failed["error"]
    assert "repeats a group of repeats" in failed["error"]


async def test_bad_op_and_static_bad_regex_are_validation_errors() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_node(
            "if",
            {
                "conditions": [
                    {"left": 1, "op": "equals", "right": 1},
                    {"left": "a", "op": "matches", "right": "("},
                ]
            },
        )
    text = str(caught.value)
    assert "parameters.conditions[0].op" in text and "'equals'" in text
    assert "parameters.conditions[1].right" in text and "bad regex" in text


def test_condition_text_must_be_one_whole_expression() -> None:
    assert check_conditions({"condition": "  {{ json.a > 1 }} "}) == []
    for text in ("{{ json.a }} > 1", "yes", "{{ json.a }} and {{ json.b }}"):
        [(where, message)] = check_conditions({"condition": text})
        assert where == "condition"
        assert message.startswith("must be one whole {{ expression }} (text is always true)")
        assert "e.g. {{ json.total > 100 }}" in message
