"""The `date_time` node, through the real executor."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flowlite.testing import NodeResult, node_problems, run_node, run_workflow

MOMENT = "2026-11-21T10:47:30Z"  # a Saturday, ISO week 47


def problems(parameters: dict[str, Any]) -> list[str]:
    return node_problems("date_time", parameters)


async def date_time(parameters: dict[str, Any], items: list[Any], **node: Any) -> NodeResult:
    return await run_node("date_time", {"timezone": "UTC", **parameters}, items, **node)


async def one(parameters: dict[str, Any], value: Any, key: str = "d") -> Any:
    result = await date_time({"field": "d", **parameters}, [{"d": value}])
    assert result.status == "success", result.error
    return result.json()[0][key]


# --- now, format, parse ------------------------------------------------------------------------


async def test_now_in_the_given_timezone_one_instant_per_run() -> None:
    before = dt.datetime.now(dt.UTC)
    result = await run_node(
        "date_time", {"operation": "now", "timezone": "Asia/Tokyo"}, [{"a": 1}, {"a": 2}]
    )
    after = dt.datetime.now(dt.UTC)
    first, second = result.json()
    assert first["a"] == 1 and first["now"] == second["now"]
    moment = dt.datetime.fromisoformat(first["now"])
    assert moment.utcoffset() == dt.timedelta(hours=9)
    assert before - dt.timedelta(seconds=1) <= moment <= after


async def test_now_with_format_and_into() -> None:
    result = await date_time({"operation": "now", "format": "%Y", "into": "year"}, [{}])
    assert result.json() == [{"year": str(dt.datetime.now(dt.UTC).year)}]


async def test_now_defaults_to_the_workflow_timezone() -> None:
    document = {
        "name": "tz",
        "settings": {"timezone": "America/New_York"},
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {"name": "Now", "type": "date_time", "parameters": {"operation": "now"}},
        ],
        "connections": [{"from": "Start", "to": "Now"}],
    }
    record, items = await run_workflow(document, [{}])
    assert record.status == "success"
    offset = dt.datetime.fromisoformat(items[0]["json"]["now"]).utcoffset()
    assert offset in (dt.timedelta(hours=-5), dt.timedelta(hours=-4))


async def test_format_converts_to_the_timezone_and_writes_the_field_itself() -> None:
    result = await run_node(
        "date_time",
        {
            "operation": "format",
            "field": "d",
            "format": "%Y-%m-%d %H:%M",
            "timezone": "Europe/Berlin",
        },
        [{"d": MOMENT, "x": 1}],
    )
    assert result.json() == [{"d": "2026-11-21 11:47", "x": 1}]


async def test_format_into_a_nested_field_keeps_the_input() -> None:
    result = await date_time(
        {"operation": "format", "field": "o.d", "format": "%d.%m.%Y", "into": "o.text"},
        [{"o": {"d": MOMENT}}],
    )
    assert result.json() == [{"o": {"d": MOMENT, "text": "21.11.2026"}}]
    assert result.record.nodes["Input 0"].runs[0].outputs["main"][0]["json"] == {"o": {"d": MOMENT}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MOMENT, "2026-11-21T10:47:30+00:00"),
        ("2026-11-21", "2026-11-21T00:00:00+00:00"),
        ("2026-11-21 10:00", "2026-11-21T10:00:00+00:00"),
        ("2026-11-21T12:00:00+02:00", "2026-11-21T10:00:00+00:00"),
        (1700000000, "2023-11-14T22:13:20+00:00"),
        (1700000000.5, "2023-11-14T22:13:20.500000+00:00"),
        (1700000000000, "2023-11-14T22:13:20+00:00"),
        ("1700000000", "2023-11-14T22:13:20+00:00"),
    ],
)
async def test_parse_iso_and_epoch(value: Any, expected: str) -> None:
    assert await one({"operation": "parse"}, value) == expected


async def test_parse_with_a_format_and_a_timezone() -> None:
    result = await run_node(
        "date_time",
        {
            "operation": "parse",
            "field": "d",
            "format": "%d/%m/%Y %H:%M",
            "timezone": "Europe/Berlin",
            "into": "parsed",
        },
        [{"d": "01/07/2026 12:30"}],
    )
    assert result.json() == [{"d": "01/07/2026 12:30", "parsed": "2026-07-01T12:30:00+02:00"}]


async def test_parse_format_mismatch_names_field_and_format() -> None:
    result = await date_time(
        {"operation": "parse", "field": "d", "format": "%d/%m/%Y"}, [{"d": "2026-01-01"}]
    )
    assert result.status == "error"
    assert result.error is not None
    assert "'d'" in result.error.message and "%d/%m/%Y" in result.error.message


# --- add, subtract -----------------------------------------------------------------------------


async def test_add_and_subtract_units() -> None:
    base = "2026-11-21T10:00:00+00:00"
    assert await one({"operation": "add", "amount": 90, "unit": "seconds"}, base) == (
        "2026-11-21T10:01:30+00:00"
    )
    assert await one({"operation": "add", "amount": 2, "unit": "minutes"}, base) == (
        "2026-11-21T10:02:00+00:00"
    )
    assert await one({"operation": "add", "amount": 1.5, "unit": "hours"}, base) == (
        "2026-11-21T11:30:00+00:00"
    )
    assert await one({"operation": "subtract", "amount": 2, "unit": "weeks"}, base) == (
        "2026-11-07T10:00:00+00:00"
    )
    assert await one({"operation": "add", "amount": "{{ '3' }}", "unit": "days"}, base) == (
        "2026-11-24T10:00:00+00:00"
    )


async def test_add_days_keeps_wall_time_hours_are_elapsed_across_dst() -> None:
    parameters = {"field": "d", "timezone": "Europe/Berlin", "operation": "add", "amount": 1}
    items = [{"d": "2026-03-28T12:00:00+01:00"}]
    day = await run_node("date_time", {**parameters, "unit": "days"}, items)
    assert day.json() == [{"d": "2026-03-29T12:00:00+02:00"}]
    hours = await run_node("date_time", {**parameters, "unit": "hours", "amount": 24}, items)
    assert hours.json() == [{"d": "2026-03-29T13:00:00+02:00"}]


async def test_add_months_and_years_clamp_the_day() -> None:
    assert await one(
        {"operation": "add", "amount": 1, "unit": "months"}, "2026-01-31T10:00:00Z"
    ) == ("2026-02-28T10:00:00+00:00")
    assert await one({"operation": "add", "amount": 1, "unit": "months"}, "2024-01-31") == (
        "2024-02-29T00:00:00+00:00"
    )
    assert await one({"operation": "add", "amount": 13, "unit": "months"}, "2026-12-15") == (
        "2028-01-15T00:00:00+00:00"
    )
    assert await one({"operation": "subtract", "amount": 1, "unit": "years"}, "2024-02-29") == (
        "2023-02-28T00:00:00+00:00"
    )
    assert await one({"operation": "subtract", "amount": 2, "unit": "months"}, "2026-01-10") == (
        "2025-11-10T00:00:00+00:00"
    )


async def test_fractional_months_fail_per_item() -> None:
    result = await date_time(
        {"operation": "add", "field": "d", "amount": 1.5, "unit": "months"},
        [{"d": MOMENT}],
        on_error="continue",
    )
    assert result.status == "success"
    assert "whole amount" in result.json()[0]["error"]


async def test_amount_per_item_from_an_expression() -> None:
    result = await date_time(
        {"operation": "add", "field": "d", "amount": "{{ json.n }}", "unit": "days"},
        [{"d": "2026-01-01", "n": 1}, {"d": "2026-01-01", "n": 10}],
    )
    assert [it["d"] for it in result.json()] == [
        "2026-01-02T00:00:00+00:00",
        "2026-01-11T00:00:00+00:00",
    ]


# --- diff --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "unit", "expected"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z", "days", 1.5),
        ("2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z", "hours", 36),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z", "minutes", 1.5),
        ("2026-01-01T00:00:00Z", "2026-01-15T00:00:00Z", "weeks", 2),
        ("2026-01-01T00:00:10Z", "2026-01-01T00:00:00Z", "seconds", -10),
        ("2026-01-31", "2026-02-28", "months", 1),
        ("2026-01-15", "2026-03-14", "months", 1),
        ("2026-03-14", "2026-01-15", "months", -1),
        ("2020-05-01", "2026-04-30", "years", 5),
        ("2020-05-01", "2026-05-01", "years", 6),
    ],
)
async def test_diff(start: str, end: str, unit: str, expected: float) -> None:
    result = await date_time(
        {"operation": "diff", "field": "s", "end": "e", "unit": unit}, [{"s": start, "e": end}]
    )
    assert result.json() == [{"s": start, "e": end, "diff": expected}]


async def test_diff_across_dst_days_are_calendar_days() -> None:
    parameters = {"operation": "diff", "field": "s", "end": "e", "timezone": "Europe/Berlin"}
    items = [{"s": "2026-03-28T12:00:00+01:00", "e": "2026-03-29T12:00:00+02:00"}]
    days = await run_node("date_time", {**parameters, "unit": "days", "into": "n"}, items)
    assert days.json()[0]["n"] == 1
    hours = await run_node("date_time", {**parameters, "unit": "hours", "into": "n"}, items)
    assert hours.json()[0]["n"] == 23


async def test_diff_defaults_to_now() -> None:
    result = await date_time(
        {"operation": "diff", "field": "s", "unit": "years"}, [{"s": "2000-01-01"}]
    )
    assert result.json()[0]["diff"] >= 26


# --- round, extract ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "mode", "expected"),
    [
        ("seconds", "floor", "2026-11-21T10:47:30+00:00"),
        ("minutes", "floor", "2026-11-21T10:47:00+00:00"),
        ("minutes", "nearest", "2026-11-21T10:48:00+00:00"),
        ("hours", "floor", "2026-11-21T10:00:00+00:00"),
        ("hours", "ceil", "2026-11-21T11:00:00+00:00"),
        ("hours", "nearest", "2026-11-21T11:00:00+00:00"),
        ("days", "floor", "2026-11-21T00:00:00+00:00"),
        ("days", "nearest", "2026-11-21T00:00:00+00:00"),
        ("weeks", "floor", "2026-11-16T00:00:00+00:00"),
        ("months", "floor", "2026-11-01T00:00:00+00:00"),
        ("months", "ceil", "2026-12-01T00:00:00+00:00"),
        ("years", "ceil", "2027-01-01T00:00:00+00:00"),
    ],
)
async def test_round(unit: str, mode: str, expected: str) -> None:
    assert await one({"operation": "round", "unit": unit, "mode": mode}, MOMENT) == expected


async def test_round_defaults_to_floor_and_keeps_a_boundary() -> None:
    assert await one({"operation": "round", "unit": "hours"}, MOMENT) == "2026-11-21T10:00:00+00:00"
    on_boundary = "2026-11-01T00:00:00+00:00"
    assert await one({"operation": "round", "unit": "months", "mode": "ceil"}, on_boundary) == (
        on_boundary
    )


async def test_round_to_days_in_a_timezone() -> None:
    result = await run_node(
        "date_time",
        {"operation": "round", "field": "d", "unit": "days", "timezone": "Asia/Tokyo"},
        [{"d": "2026-11-21T20:00:00Z"}],
    )
    assert result.json() == [{"d": "2026-11-22T00:00:00+09:00"}]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("year", 2026),
        ("month", 11),
        ("day", 21),
        ("hour", 10),
        ("minute", 47),
        ("second", 30),
        ("weekday", 6),
        ("week", 47),
    ],
)
async def test_extract(part: str, expected: int) -> None:
    assert await one({"operation": "extract", "part": part}, MOMENT, key=part) == expected


async def test_extract_part_from_unit_into_and_timezone() -> None:
    result = await run_node(
        "date_time",
        {
            "operation": "extract",
            "field": "d",
            "unit": "hours",
            "into": "h",
            "timezone": "Asia/Tokyo",
        },
        [{"d": MOMENT}],
    )
    assert result.json() == [{"d": MOMENT, "h": 19}]


# --- errors, validation, edges -------------------------------------------------------------------


async def test_missing_field_and_bad_values() -> None:
    stopped = await date_time({"operation": "parse", "field": "d"}, [{"x": 1}])
    assert stopped.status == "error"
    assert stopped.error is not None and "'d'" in stopped.error.message
    assert "missing" in stopped.error.message
    cont = await date_time(
        {"operation": "parse", "field": "d"},
        [{"d": "soon"}, {"d": None}, {"d": True}, {"d": MOMENT}],
        on_error="continue",
    )
    out = cont.json()
    assert "not a date" in out[0]["error"] and "'soon'" in out[0]["error"]
    assert "not a date" in out[1]["error"] and "not a date" in out[2]["error"]
    assert out[3] == {"d": "2026-11-21T10:47:30+00:00"}


async def test_error_output_routes_only_the_failed_items() -> None:
    result = await date_time(
        {"operation": "extract", "field": "d", "part": "year"},
        [{"d": MOMENT}, {"d": "nope"}],
        on_error="error_output",
    )
    assert result.json("main") == [{"d": MOMENT, "year": 2026}]
    assert [e["d"] for e in result.json("error")] == ["nope"]


async def test_keeps_binary_and_handles_empty_input() -> None:
    binary = {"f": {"mime_type": "text/plain", "size": 1, "data": "YQ=="}}
    result = await date_time(
        {"operation": "extract", "field": "d", "part": "day"},
        [{"json": {"d": MOMENT}, "binary": binary}],
    )
    assert result.outputs["main"] == [{"json": {"d": MOMENT, "day": 21}, "binary": binary}]
    empty = await run_node("date_time", {"operation": "now"}, [])
    assert empty.json() == []


async def test_unknown_timezone_from_an_expression_fails_per_item() -> None:
    result = await run_node(
        "date_time", {"operation": "now", "timezone": "{{ json.tz }}"}, [{"tz": "Mars/Base"}]
    )
    assert result.status == "error"
    assert result.error is not None and "Mars/Base" in result.error.message


async def test_validation() -> None:
    assert any("operation" in p and "required" in p for p in problems({}))
    assert any("field" in p for p in problems({"operation": "parse"}))
    assert any("format" in p for p in problems({"operation": "format", "field": "d"}))
    assert any("amount" in p for p in problems({"operation": "add", "field": "d"}))
    assert any("unknown timezone" in p for p in problems({"operation": "now", "timezone": "X/Y"}))
    assert any("unit" in p for p in problems({"operation": "round", "field": "d", "unit": "ages"}))
    assert any("part" in p for p in problems({"operation": "extract", "field": "d", "part": "era"}))
    assert problems({"operation": "now"}) == []
    assert problems({"operation": "add", "field": "d", "amount": 1, "unit": "months"}) == []
