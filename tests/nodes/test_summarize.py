"""The `summarize` node, through the real executor."""

from __future__ import annotations

from typing import Any

from flowlite.testing import node_problems, run_node

ORDERS = [
    {"region": "north", "total": 10, "sku": "a", "customer": {"name": "Ann"}},
    {"region": "south", "total": "2.5", "sku": "b", "customer": {"name": "Bob"}},
    {"region": "north", "total": 5, "sku": "a", "customer": {"name": "Cy"}},
    {"region": "north", "sku": "c", "customer": {"name": None}},
]


def problems(parameters: dict[str, Any]) -> list[str]:
    return node_problems("summarize", parameters)


def aggregations(field: str, *ops: str) -> list[dict[str, str]]:
    return [{"field": field, "op": op} for op in ops]


async def test_groups_in_order_of_first_appearance_with_every_op() -> None:
    result = await run_node(
        "summarize",
        {
            "group_by": ["region"],
            "aggregations": [
                *aggregations("total", "count", "sum", "avg", "min", "max"),
                *aggregations("sku", "count_unique", "concat", "append", "first", "last"),
            ],
        },
        ORDERS,
    )
    assert result.status == "success"
    assert result.json() == [
        {
            "region": "north",
            "count_total": 2,
            "sum_total": 15,
            "avg_total": 7.5,
            "min_total": 5,
            "max_total": 10,
            "count_unique_sku": 2,
            "concat_sku": "a, a, c",
            "append_sku": ["a", "a", "c"],
            "first_sku": "a",
            "last_sku": "c",
        },
        {
            "region": "south",
            "count_total": 1,
            "sum_total": 2.5,
            "avg_total": 2.5,
            "min_total": 2.5,
            "max_total": 2.5,
            "count_unique_sku": 1,
            "concat_sku": "b",
            "append_sku": ["b"],
            "first_sku": "b",
            "last_sku": "b",
        },
    ]


async def test_dotted_fields_name_outputs_with_underscores_and_nulls_are_skipped() -> None:
    result = await run_node(
        "summarize",
        {"aggregations": aggregations("customer.name", "append", "count", "last")},
        ORDERS,
    )
    assert result.json() == [
        {
            "append_customer_name": ["Ann", "Bob", "Cy"],
            "count_customer_name": 3,
            "last_customer_name": "Cy",
        }
    ]


async def test_nested_group_fields_are_written_nested() -> None:
    items = [{"c": {"id": 1}, "v": 1}, {"c": {"id": 2}, "v": 2}, {"c": {"id": 1}, "v": 3}]
    result = await run_node(
        "summarize", {"group_by": ["c.id"], "aggregations": aggregations("v", "sum")}, items
    )
    assert result.json() == [{"c": {"id": 1}, "sum_v": 4}, {"c": {"id": 2}, "sum_v": 2}]


async def test_count_without_a_field_counts_items_and_several_group_fields() -> None:
    items = [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1.0, "b": "x"},
        {"b": "x"},
        {"a": None, "b": "x"},
    ]
    result = await run_node(
        "summarize", {"group_by": ["a", "b"], "aggregations": [{"op": "count"}]}, items
    )
    assert result.json() == [
        {"a": 1, "b": "x", "count": 2},
        {"a": 1, "b": "y", "count": 1},
        {"b": "x", "count": 1},
        {"a": None, "b": "x", "count": 1},
    ]


async def test_group_by_a_single_name_and_object_values() -> None:
    items = [{"k": {"x": 1}, "v": 1}, {"k": {"x": 1}, "v": 2}, {"k": [1], "v": 3}]
    result = await run_node(
        "summarize", {"group_by": "k", "aggregations": aggregations("v", "append")}, items
    )
    assert result.json() == [{"k": {"x": 1}, "append_v": [1, 2]}, {"k": [1], "append_v": [3]}]


async def test_concat_separator_and_non_text_values() -> None:
    items = [{"v": "a"}, {"v": 1}, {"v": True}, {"v": {"k": 1}}]
    result = await run_node(
        "summarize", {"aggregations": [{"field": "v", "op": "concat", "separator": "|"}]}, items
    )
    assert result.json() == [{"concat_v": 'a|1|true|{"k":1}'}]


async def test_min_max_of_text_and_mixed_values() -> None:
    items = [{"d": "2024-03-01"}, {"d": "2023-12-31"}, {"d": "2024-01-15"}]
    result = await run_node("summarize", {"aggregations": aggregations("d", "min", "max")}, items)
    assert result.json() == [{"min_d": "2023-12-31", "max_d": "2024-03-01"}]
    mixed = await run_node(
        "summarize", {"aggregations": aggregations("v", "min", "max")}, [{"v": "b"}, {"v": 3}]
    )
    assert mixed.json() == [{"min_v": 3, "max_v": "b"}]
    numeric_text = await run_node(
        "summarize", {"aggregations": aggregations("v", "min", "max")}, [{"v": "10"}, {"v": 9}]
    )
    assert numeric_text.json() == [{"min_v": 9, "max_v": 10}]


async def test_sum_of_a_non_number_names_field_item_and_value() -> None:
    result = await run_node(
        "summarize",
        {"aggregations": aggregations("total", "sum")},
        [{"total": 1}, {"total": "abc"}],
    )
    assert result.status == "error"
    assert result.error is not None
    message = result.error.message
    assert "'total'" in message and "'abc'" in message and "item 1" in message
    assert result.error.item_index == 1
    with_bool = await run_node(
        "summarize", {"aggregations": aggregations("t", "avg")}, [{"t": True}]
    )
    assert with_bool.status == "error"


async def test_sum_error_with_on_error_continue_passes_items_on() -> None:
    result = await run_node(
        "summarize",
        {"aggregations": aggregations("t", "sum")},
        [{"t": 1}, {"t": "x"}],
        on_error="continue",
    )
    assert result.status == "success"
    out = result.json()
    assert [it["t"] for it in out] == [1, "x"]
    assert all("needs numbers" in it["error"] for it in out)


async def test_empty_groups_and_empty_input() -> None:
    result = await run_node(
        "summarize",
        {"aggregations": aggregations("v", "count", "sum", "avg", "min", "concat", "append")},
        [],
    )
    assert result.json() == [
        {"count_v": 0, "sum_v": 0, "avg_v": None, "min_v": None, "concat_v": "", "append_v": []}
    ]
    grouped = await run_node(
        "summarize", {"group_by": ["g"], "aggregations": aggregations("v", "count")}, []
    )
    assert grouped.json() == []


async def test_all_values_missing_in_a_group() -> None:
    result = await run_node(
        "summarize",
        {"aggregations": aggregations("v", "first", "max", "avg", "count_unique")},
        [{"x": 1}],
    )
    assert result.json() == [{"first_v": None, "max_v": None, "avg_v": None, "count_unique_v": 0}]


async def test_validation() -> None:
    assert any("aggregations" in p and "required" in p for p in problems({}))
    assert any("op" in p for p in problems({"aggregations": [{"field": "a", "op": "median"}]}))
    assert any("sum needs a field" in p for p in problems({"aggregations": [{"op": "sum"}]}))
    assert any("group_by" in p for p in problems({"group_by": 3, "aggregations": []}))
    assert problems({"group_by": ["a"], "aggregations": [{"op": "count"}]}) == []
