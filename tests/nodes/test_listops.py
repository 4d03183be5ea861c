"""The `sort`, `limit` and `remove_duplicates` nodes, through the real executor."""

from __future__ import annotations

from typing import Any

import pytest

from flowlite.errors import WorkflowInvalid
from flowlite.testing import node_problems as problems
from flowlite.testing import run_node

# --- sort --------------------------------------------------------------------------------------


async def test_sort_ascending_and_descending() -> None:
    items = [{"n": 3}, {"n": 1.5}, {"n": 2}]
    up = await run_node("sort", {"by": [{"field": "n"}]}, items)
    assert up.json() == [{"n": 1.5}, {"n": 2}, {"n": 3}]
    down = await run_node("sort", {"by": [{"field": "n", "order": "desc"}]}, items)
    assert down.json() == [{"n": 3}, {"n": 2}, {"n": 1.5}]


async def test_sort_is_stable() -> None:
    items = [{"k": 1, "i": 0}, {"k": 0, "i": 1}, {"k": 1, "i": 2}, {"k": 0, "i": 3}]
    for order in ("asc", "desc"):
        result = await run_node("sort", {"by": [{"field": "k", "order": order}]}, items)
        out = result.json()
        assert [it["i"] for it in out if it["k"] == 0] == [1, 3]
        assert [it["i"] for it in out if it["k"] == 1] == [0, 2]


async def test_sort_by_several_keys_and_nested_fields() -> None:
    items = [
        {"c": {"name": "b"}, "total": 1},
        {"c": {"name": "a"}, "total": 1},
        {"c": {"name": "a"}, "total": 5},
    ]
    result = await run_node(
        "sort",
        {"by": [{"field": "total", "order": "desc"}, {"field": "c.name", "order": "asc"}]},
        items,
    )
    assert result.json() == [items[2], items[1], items[0]]


async def test_sort_missing_and_null_last_for_both_orders() -> None:
    items = [{"id": 1}, {"n": 2, "id": 2}, {"n": None, "id": 3}, {"n": 1, "id": 4}]
    up = await run_node("sort", {"by": [{"field": "n"}]}, items)
    assert [it["id"] for it in up.json()] == [4, 2, 1, 3]
    down = await run_node("sort", {"by": [{"field": "n", "order": "desc"}]}, items)
    assert [it["id"] for it in down.json()] == [2, 4, 1, 3]


async def test_sort_mixed_types_do_not_crash() -> None:
    values: list[Any] = ["b", 2, True, {"x": 1}, [1], "a", 1.5, False]
    result = await run_node("sort", {"by": [{"field": "v"}]}, [{"v": v} for v in values])
    assert result.status == "success"
    assert [it["v"] for it in result.json()] == [False, True, 1.5, 2, "a", "b", [1], {"x": 1}]


async def test_sort_passes_items_unchanged_with_binary() -> None:
    binary = {"f": {"mime_type": "text/plain", "size": 1, "data": "YQ=="}}
    result = await run_node(
        "sort", {"by": [{"field": "n"}]}, [{"json": {"n": 2}, "binary": binary}, {"n": 1}]
    )
    assert result.outputs["main"] == [{"json": {"n": 1}}, {"json": {"n": 2}, "binary": binary}]


async def test_sort_random_is_a_permutation_and_repeatable_with_a_seed() -> None:
    items = [{"i": i} for i in range(30)]
    first = await run_node("sort", {"random": True, "seed": 7}, items)
    again = await run_node("sort", {"random": True, "seed": 7}, items)
    assert sorted(it["i"] for it in first.json()) == list(range(30))
    assert first.json() == again.json()
    assert first.json() != items


async def test_sort_empty_and_single_input() -> None:
    assert (await run_node("sort", {"by": [{"field": "n"}]}, [])).json() == []
    assert (await run_node("sort", {"by": [{"field": "n"}]}, [{"a": 1}])).json() == [{"a": 1}]


async def test_sort_field_from_an_expression() -> None:
    result = await run_node(
        "sort", {"by": [{"field": "{{ 'n' }}", "order": "desc"}]}, [{"n": 1}, {"n": 2}]
    )
    assert result.json() == [{"n": 2}, {"n": 1}]


async def test_sort_validation() -> None:
    assert any("random: true" in p for p in problems("sort", {}))
    assert any("not both" in p for p in problems("sort", {"random": True, "by": []}))
    assert any("order" in p for p in problems("sort", {"by": [{"field": "a", "order": "up"}]}))
    assert any(".field" in p for p in problems("sort", {"by": [{"order": "asc"}]}))
    assert problems("sort", {"random": True}) == []
    with pytest.raises(WorkflowInvalid):
        await run_node("sort", {}, [{}])


# --- limit -------------------------------------------------------------------------------------


async def test_limit_first_and_last() -> None:
    items = [{"i": i} for i in range(5)]
    first = await run_node("limit", {"max_items": 2}, items)
    assert first.json() == [{"i": 0}, {"i": 1}]
    last = await run_node("limit", {"max_items": 2, "keep": "last"}, items)
    assert last.json() == [{"i": 3}, {"i": 4}]


async def test_limit_defaults_to_one_and_handles_edges() -> None:
    items = [{"i": i} for i in range(3)]
    assert (await run_node("limit", {}, items)).json() == [{"i": 0}]
    assert (await run_node("limit", {"max_items": 0, "keep": "last"}, items)).json() == []
    assert (await run_node("limit", {"max_items": 10, "keep": "last"}, items)).json() == [
        {"i": i} for i in range(3)
    ]
    assert (await run_node("limit", {"max_items": 2}, [])).json() == []


async def test_limit_max_items_from_an_expression() -> None:
    result = await run_node("limit", {"max_items": "{{ 1 + 1 }}"}, [{"i": i} for i in range(4)])
    assert result.json() == [{"i": 0}, {"i": 1}]


async def test_limit_validation() -> None:
    assert any("at least 0" in p for p in problems("limit", {"max_items": -1}))
    assert any("whole number" in p for p in problems("limit", {"max_items": 1.5}))
    assert any("keep" in p for p in problems("limit", {"keep": "middle"}))
    bad = await run_node("limit", {"max_items": "{{ 'many' }}"}, [{}])
    assert bad.status == "error"
    assert bad.error is not None and "max_items" in bad.error.message


# --- remove_duplicates ---------------------------------------------------------------------------


async def test_remove_duplicates_whole_json_ignores_key_order_and_int_float() -> None:
    items = [{"a": 1, "b": {"x": 1}}, {"b": {"x": 1.0}, "a": 1}, {"a": 2}, {"a": 1, "b": {"x": 2}}]
    result = await run_node("remove_duplicates", {}, items)
    assert result.json() == [items[0], items[2], items[3]]


async def test_remove_duplicates_by_fields_keeps_first_occurrence() -> None:
    items = [
        {"email": "a@x", "id": 1, "t": "n"},
        {"email": "b@x", "id": 2, "t": "n"},
        {"email": "a@x", "id": 3, "t": "n"},
        {"email": "a@x", "id": 4, "t": "m"},
    ]
    one = await run_node("remove_duplicates", {"fields": "email"}, items)
    assert [it["id"] for it in one.json()] == [1, 2]
    two = await run_node("remove_duplicates", {"fields": ["email", "t"]}, items)
    assert [it["id"] for it in two.json()] == [1, 2, 4]


async def test_remove_duplicates_distinguishes_types() -> None:
    items = [{"v": 1}, {"v": "1"}, {"v": True}, {"v": None}, {"v": 1.0}, {"v": [1]}, {"v": None}]
    result = await run_node("remove_duplicates", {"fields": "v"}, items)
    assert [it["v"] for it in result.json()] == [1, "1", True, None, [1]]


async def test_remove_duplicates_nested_field() -> None:
    items = [{"c": {"id": 1}, "n": 1}, {"c": {"id": 1}, "n": 2}, {"c": {"id": 2}, "n": 3}]
    result = await run_node("remove_duplicates", {"fields": ["c.id"]}, items)
    assert [it["n"] for it in result.json()] == [1, 3]


async def test_remove_duplicates_missing_field() -> None:
    items = [{"k": 1}, {"other": 1}, {"k": 1}]
    stopped = await run_node("remove_duplicates", {"fields": "k"}, items)
    assert stopped.status == "error"
    assert stopped.error is not None
    assert "'k'" in stopped.error.message and stopped.error.item_index == 1
    cont = await run_node("remove_duplicates", {"fields": "k"}, items, on_error="continue")
    out = cont.json()
    assert out[0] == {"k": 1} and out[1]["other"] == 1 and "missing" in out[1]["error"]
    assert len(out) == 2
    routed = await run_node("remove_duplicates", {"fields": "k"}, items, on_error="error_output")
    assert routed.json("main") == [{"k": 1}]
    assert [e["other"] for e in routed.json("error")] == [1]


async def test_remove_duplicates_empty_input_and_validation() -> None:
    assert (await run_node("remove_duplicates", {"fields": "k"}, [])).json() == []
    assert any("fields" in p for p in problems("remove_duplicates", {"fields": 3}))
    assert any("fields" in p for p in problems("remove_duplicates", {"fields": [1]}))
    assert problems("remove_duplicates", {"fields": ["a", "b"]}) == []
