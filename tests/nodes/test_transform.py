"""The `set`, `rename_keys`, `split_out` and `aggregate` nodes, through the real executor."""

from __future__ import annotations

from typing import Any

import pytest

from flowlite.errors import WorkflowInvalid
from flowlite.testing import NodeResult, run_node
from flowlite.testing import node_problems as problems

BINARY = {"file": {"mime_type": "text/plain", "file_name": "a.txt", "size": 1, "data": "YQ=="}}


def source_json(result: NodeResult) -> list[Any]:
    """The items the node received, as recorded for the source node (must be unchanged)."""
    return [it["json"] for it in result.record.nodes["Input 0"].runs[0].outputs["main"]]


# --- set ---------------------------------------------------------------------------------------


async def test_set_static_and_expression_fields() -> None:
    result = await run_node(
        "set",
        {"fields": {"priority": "high", "gross": "{{ json.price * 2 }}", "n": 3}},
        [{"price": 10}, {"price": 1.5}],
    )
    assert result.status == "success"
    assert result.json() == [
        {"price": 10, "priority": "high", "gross": 20, "n": 3},
        {"price": 1.5, "priority": "high", "gross": 3.0, "n": 3},
    ]


async def test_set_text_with_embedded_expression() -> None:
    result = await run_node(
        "set", {"fields": {"greeting": "Hi {{ json.name }}!"}}, [{"name": "Ada"}]
    )
    assert result.json() == [{"name": "Ada", "greeting": "Hi Ada!"}]


async def test_set_dotted_name_writes_nested_without_touching_the_input() -> None:
    result = await run_node(
        "set",
        {"fields": {"order.total": 5, "order.meta.tag": "x"}},
        [{"order": {"id": 1, "meta": {"a": 1}}}],
    )
    assert result.json() == [{"order": {"id": 1, "total": 5, "meta": {"a": 1, "tag": "x"}}}]
    assert source_json(result) == [{"order": {"id": 1, "meta": {"a": 1}}}]


async def test_set_replaces_a_non_object_on_the_dotted_path() -> None:
    result = await run_node("set", {"fields": {"a.b": 1}}, [{"a": 7}])
    assert result.json() == [{"a": {"b": 1}}]


async def test_set_keep_none() -> None:
    result = await run_node("set", {"fields": {"x": 1}, "keep": "none"}, [{"a": 1, "b": 2}])
    assert result.json() == [{"x": 1}]


async def test_set_keep_only_include_with_nested_and_missing_fields() -> None:
    result = await run_node(
        "set",
        {"keep": "only", "include": ["a", "c.d", "missing"], "fields": {"x": "{{ json.b }}"}},
        [{"a": 1, "b": 2, "c": {"d": 3, "e": 4}}],
    )
    assert result.json() == [{"a": 1, "c": {"d": 3}, "x": 2}]


async def test_set_remove_top_level_and_nested_fields() -> None:
    result = await run_node(
        "set",
        {"remove": ["a", "c.d", "not_there"]},
        [{"a": 1, "b": 2, "c": {"d": 3, "e": 4}}],
    )
    assert result.json() == [{"b": 2, "c": {"e": 4}}]
    assert source_json(result) == [{"a": 1, "b": 2, "c": {"d": 3, "e": 4}}]


async def test_set_remove_happens_before_fields_are_set() -> None:
    result = await run_node("set", {"remove": ["a"], "fields": {"a": "new"}}, [{"a": "old"}])
    assert result.json() == [{"a": "new"}]


async def test_set_keeps_binary() -> None:
    result = await run_node("set", {"fields": {"x": 1}}, [{"json": {"a": 1}, "binary": BINARY}])
    assert result.outputs["main"][0]["binary"] == BINARY
    general = await run_node(
        "set", {"keep": "none", "fields": {"x": 1}}, [{"json": {"a": 1}, "binary": BINARY}]
    )
    assert general.outputs["main"][0] == {"json": {"x": 1}, "binary": BINARY}


async def test_set_static_objects_are_not_shared_between_items() -> None:
    result = await run_node("set", {"fields": {"tags": ["a"], "meta": {"k": 1}}}, [{}, {}])
    first, second = result.outputs["main"]
    assert first["json"] == second["json"] == {"tags": ["a"], "meta": {"k": 1}}
    assert first["json"]["tags"] is not second["json"]["tags"]
    assert first["json"]["meta"] is not second["json"]["meta"]


async def test_set_static_objects_are_not_shared_on_the_general_path() -> None:
    result = await run_node("set", {"keep": "none", "fields": {"a.tags": ["x"]}}, [{}, {}])
    first, second = result.outputs["main"]
    assert first["json"] == second["json"] == {"a": {"tags": ["x"]}}
    assert first["json"]["a"]["tags"] is not second["json"]["a"]["tags"]


async def test_set_object_value_with_expressions_inside() -> None:
    result = await run_node(
        "set", {"fields": {"person": {"name": "{{ json.n }}", "fixed": 1}}}, [{"n": "Ada"}]
    )
    assert result.json() == [{"n": "Ada", "person": {"name": "Ada", "fixed": 1}}]


async def test_set_whole_fields_parameter_as_an_expression() -> None:
    result = await run_node("set", {"fields": "{{ {'double': json.n * 2} }}"}, [{"n": 4}])
    assert result.json() == [{"n": 4, "double": 8}]


async def test_set_no_fields_copies_items() -> None:
    result = await run_node("set", {}, [{"a": 1}])
    assert result.json() == [{"a": 1}]


async def test_set_empty_input() -> None:
    result = await run_node("set", {"fields": {"a": 1}}, [])
    assert result.status == "success"
    assert result.json() == []


async def test_set_expression_failure_stops_with_the_parameter_named() -> None:
    result = await run_node("set", {"fields": {"x": "{{ json.a.b.c }}"}}, [{"a": 1}])
    assert result.status == "error"
    assert result.error is not None
    assert "fields.x" in result.error.message
    assert result.error.item_index == 0


async def test_set_per_item_error_continue() -> None:
    result = await run_node(
        "set",
        {"fields": {"y": "{{ json.x + 1 }}"}},
        [{"x": 1}, {"x": "text"}, {"x": 3}],
        on_error="continue",
    )
    assert result.status == "success"
    out = result.json()
    assert out[0] == {"x": 1, "y": 2}
    assert out[1]["x"] == "text" and "error" in out[1] and "y" not in out[1]
    assert out[2] == {"x": 3, "y": 4}


async def test_set_per_item_error_output() -> None:
    result = await run_node(
        "set",
        {"fields": {"y": "{{ json.x + 1 }}"}, "keep": "none"},
        [{"x": 1}, {"x": "text"}],
        on_error="error_output",
    )
    assert result.json("main") == [{"y": 2}]
    errors = result.json("error")
    assert len(errors) == 1 and errors[0]["x"] == "text" and errors[0]["error"]


async def test_set_validation() -> None:
    assert any("include" in p for p in problems("set", {"keep": "only"}))
    assert any("keep" in p for p in problems("set", {"keep": "some"}))
    assert any("fields" in p and "object" in p for p in problems("set", {"fields": [1]}))
    assert any("remove" in p for p in problems("set", {"remove": "a"}))
    assert problems("set", {"fields": {"a": 1}, "keep": "only", "include": ["a"]}) == []
    with pytest.raises(WorkflowInvalid):
        await run_node("set", {"keep": "only"}, [{}])


# --- rename_keys ---------------------------------------------------------------------------------


async def test_rename_keys() -> None:
    result = await run_node(
        "rename_keys",
        {"rename": [{"from": "a", "to": "b"}, {"from": "user.name", "to": "name"}]},
        [{"a": 1, "user": {"name": "Ada", "id": 7}}],
    )
    assert result.json() == [{"b": 1, "user": {"id": 7}, "name": "Ada"}]
    assert source_json(result) == [{"a": 1, "user": {"name": "Ada", "id": 7}}]


async def test_rename_keys_into_a_nested_name_and_in_order() -> None:
    result = await run_node(
        "rename_keys",
        {"rename": [{"from": "a", "to": "b"}, {"from": "b", "to": "c.d"}]},
        [{"a": 1}],
    )
    assert result.json() == [{"c": {"d": 1}}]


async def test_rename_keys_missing_from_leaves_the_item_unchanged() -> None:
    result = await run_node(
        "rename_keys", {"rename": [{"from": "nope", "to": "b"}]}, [{"a": 1}, {"nope": 2}]
    )
    assert result.json() == [{"a": 1}, {"b": 2}]


async def test_rename_keys_overwrites_the_target_and_keeps_binary() -> None:
    result = await run_node(
        "rename_keys",
        {"rename": [{"from": "a", "to": "b"}]},
        [{"json": {"a": 1, "b": 2}, "binary": BINARY}],
    )
    assert result.outputs["main"] == [{"json": {"b": 1}, "binary": BINARY}]


async def test_rename_keys_expression_in_target() -> None:
    result = await run_node(
        "rename_keys",
        {"rename": [{"from": "a", "to": "{{ json.target }}"}]},
        [{"a": 1, "target": "z"}],
    )
    assert result.json() == [{"target": "z", "z": 1}]


async def test_rename_keys_validation() -> None:
    assert any("rename" in p and "required" in p for p in problems("rename_keys", {}))
    assert any(".to" in p for p in problems("rename_keys", {"rename": [{"from": "a"}]}))


# --- split_out ---------------------------------------------------------------------------------


async def test_split_out_objects_become_items() -> None:
    result = await run_node(
        "split_out", {"field": "lines"}, [{"id": 1, "lines": [{"sku": "a"}, {"sku": "b"}]}]
    )
    assert result.json() == [{"sku": "a"}, {"sku": "b"}]


async def test_split_out_scalars_go_under_the_field_name_or_into() -> None:
    result = await run_node("split_out", {"field": "tags"}, [{"tags": ["x", "y"]}])
    assert result.json() == [{"tags": "x"}, {"tags": "y"}]
    renamed = await run_node("split_out", {"field": "tags", "into": "tag.name"}, [{"tags": ["x"]}])
    assert renamed.json() == [{"tag": {"name": "x"}}]


async def test_split_out_include_all_keeps_the_parent_fields_and_binary() -> None:
    result = await run_node(
        "split_out",
        {"field": "order.lines", "include": "all"},
        [{"json": {"id": 1, "order": {"no": 9, "lines": [{"sku": "a"}, 5]}}, "binary": BINARY}],
    )
    assert result.json() == [
        {"id": 1, "order": {"no": 9}, "sku": "a"},
        {"id": 1, "order": {"no": 9, "lines": 5}},
    ]
    assert all(it["binary"] == BINARY for it in result.outputs["main"])
    assert source_json(result) == [{"id": 1, "order": {"no": 9, "lines": [{"sku": "a"}, 5]}}]


async def test_split_out_element_fields_win_over_parent_fields() -> None:
    result = await run_node(
        "split_out", {"field": "xs", "include": "all"}, [{"id": 1, "xs": [{"id": 2}]}]
    )
    assert result.json() == [{"id": 2}]


async def test_split_out_non_list_is_one_element_and_empty_list_is_none() -> None:
    result = await run_node(
        "split_out", {"field": "v"}, [{"v": "single"}, {"v": []}, {"v": {"a": 1}}]
    )
    assert result.json() == [{"v": "single"}, {"a": 1}]


async def test_split_out_missing_field_fails_with_its_name() -> None:
    result = await run_node("split_out", {"field": "lines"}, [{"lines": [1]}, {"other": 1}])
    assert result.status == "error"
    assert result.error is not None
    assert "'lines'" in result.error.message and "missing" in result.error.message
    assert result.error.item_index == 1


async def test_split_out_missing_field_continue_and_error_output() -> None:
    items = [{"lines": [1, 2]}, {"other": 1}]
    cont = await run_node("split_out", {"field": "lines"}, items, on_error="continue")
    out = cont.json()
    assert out[:2] == [{"lines": 1}, {"lines": 2}]
    assert out[2]["other"] == 1 and "missing" in out[2]["error"]
    routed = await run_node("split_out", {"field": "lines"}, items, on_error="error_output")
    assert routed.json("main") == [{"lines": 1}, {"lines": 2}]
    assert [e["other"] for e in routed.json("error")] == [1]


async def test_split_out_empty_input_and_validation() -> None:
    result = await run_node("split_out", {"field": "x"}, [])
    assert result.json() == []
    assert any("field" in p and "required" in p for p in problems("split_out", {}))
    assert any("include" in p for p in problems("split_out", {"field": "x", "include": "some"}))


# --- aggregate ---------------------------------------------------------------------------------


async def test_aggregate_fields_skip_missing_values() -> None:
    result = await run_node(
        "aggregate",
        {"fields": [{"field": "id"}, {"field": "customer.name", "as": "names"}]},
        [{"id": 1, "customer": {"name": "A"}}, {"id": 2}, {"customer": {"name": None}}],
    )
    assert result.json() == [{"id": [1, 2], "names": ["A", None]}]


async def test_aggregate_dotted_output_name_writes_nested() -> None:
    result = await run_node("aggregate", {"fields": [{"field": "a.b"}]}, [{"a": {"b": 1}}])
    assert result.json() == [{"a": {"b": [1]}}]


async def test_aggregate_all_items() -> None:
    result = await run_node("aggregate", {"all": True}, [{"a": 1}, {"b": 2}])
    assert result.json() == [{"data": [{"a": 1}, {"b": 2}]}]
    named = await run_node("aggregate", {"all": True, "into": "rows"}, [{"a": 1}])
    assert named.json() == [{"rows": [{"a": 1}]}]


async def test_aggregate_empty_input_emits_one_item() -> None:
    fields = await run_node("aggregate", {"fields": [{"field": "a"}, {"field": "b"}]}, [])
    assert fields.json() == [{"a": [], "b": []}]
    everything = await run_node("aggregate", {"all": True}, [])
    assert everything.json() == [{"data": []}]


async def test_aggregate_validation() -> None:
    assert any("fields" in p for p in problems("aggregate", {}))
    assert any("not both" in p for p in problems("aggregate", {"all": True, "fields": []}))
    assert any(
        ".field" in p and "required" in p for p in problems("aggregate", {"fields": [{"as": "x"}]})
    )
    assert problems("aggregate", {"all": True}) == []
