"""The merge node: every mode, several inputs, dead inputs (through real workflows)."""

from __future__ import annotations

from typing import Any

import pytest

from flowlite.errors import WorkflowInvalid
from flowlite.model import workflow_from_dict
from flowlite.nodes.merge import MAX_CROSS_ITEMS
from flowlite.testing import run_node, run_workflow, test_registry
from flowlite.validation import problems_of

LEFT = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]
RIGHT = [{"id": 2, "price": 20}, {"id": 4, "price": 40}, {"id": 1, "price": 10}]


async def merge(parameters: dict[str, Any], *inputs: Any) -> list[Any]:
    result = await run_node("merge", parameters, inputs=list(inputs))
    assert result.status == "success", result.error
    return result.json()


async def test_append_is_input_order() -> None:
    assert await merge({}, [{"a": 1}, {"a": 2}], [{"b": 1}]) == [{"a": 1}, {"a": 2}, {"b": 1}]
    assert await merge({"mode": "append"}, [{"a": 1}], [{"b": 1}]) == [{"a": 1}, {"b": 1}]


async def test_append_with_more_inputs_and_a_missing_one() -> None:
    out = await merge({"inputs": 4}, [{"n": 0}], None, [{"n": 2}], [{"n": 3}])
    assert out == [{"n": 0}, {"n": 2}, {"n": 3}]


async def test_append_keeps_binary() -> None:
    binary = {"f": {"mime_type": "text/plain", "data": "YQ=="}}
    result = await run_node(
        "merge", {}, inputs=[[{"json": {"a": 1}, "binary": binary}], [{"b": 2}]]
    )
    assert result.outputs["main"] == [{"json": {"a": 1}, "binary": binary}, {"json": {"b": 2}}]


@pytest.mark.parametrize(
    ("join", "expected"),
    [
        (
            "inner",
            [{"id": 1, "name": "a", "price": 10}, {"id": 2, "name": "b", "price": 20}],
        ),
        (
            "left",
            [
                {"id": 1, "name": "a", "price": 10},
                {"id": 2, "name": "b", "price": 20},
                {"id": 3, "name": "c"},
            ],
        ),
        (
            "right",
            [
                {"id": 1, "name": "a", "price": 10},
                {"id": 2, "name": "b", "price": 20},
                {"id": 4, "price": 40},
            ],
        ),
        (
            "outer",
            [
                {"id": 1, "name": "a", "price": 10},
                {"id": 2, "name": "b", "price": 20},
                {"id": 3, "name": "c"},
                {"id": 4, "price": 40},
            ],
        ),
    ],
)
async def test_by_fields_joins(join: str, expected: list[Any]) -> None:
    out = await merge({"mode": "by_fields", "fields": "id", "join": join}, LEFT, RIGHT)
    assert out == expected


async def test_by_fields_default_join_is_inner() -> None:
    out = await merge({"mode": "by_fields", "fields": "id"}, LEFT, RIGHT)
    assert [it["id"] for it in out] == [1, 2]


async def test_by_fields_right_json_wins_and_pairs_field_names() -> None:
    out = await merge(
        {"mode": "by_fields", "fields": [{"left": "customer.id", "right": "cid"}]},
        [{"customer": {"id": "x"}, "v": "left"}, {"customer": {}, "v": "no key"}],
        [{"cid": "x", "v": "right"}],
    )
    assert out == [{"customer": {"id": "x"}, "v": "right", "cid": "x"}]


async def test_by_fields_duplicates_pair_each_left_with_each_right_in_order() -> None:
    out = await merge(
        {"mode": "by_fields", "fields": "k", "join": "outer"},
        [{"k": 1, "l": "a"}, {"k": 1, "l": "b"}, {"k": None, "l": "null"}],
        [{"k": 1, "r": "x"}, {"k": 1, "r": "y"}, {"k": None, "r": "null"}],
    )
    assert out == [
        {"k": 1, "l": "a", "r": "x"},
        {"k": 1, "l": "a", "r": "y"},
        {"k": 1, "l": "b", "r": "x"},
        {"k": 1, "l": "b", "r": "y"},
        {"k": None, "l": "null"},  # null keys never match
        {"k": None, "r": "null"},
    ]


async def test_by_fields_several_keys_and_object_values() -> None:
    out = await merge(
        {
            "mode": "by_fields",
            "fields": [{"left": "a", "right": "a"}, {"left": "tags", "right": "labels"}],
        },
        [{"a": 1, "tags": {"x": 1, "y": 2}}, {"a": 1, "tags": {"x": 9}}],
        [{"a": 1, "labels": {"y": 2, "x": 1}, "hit": True}, {"a": 1.0, "labels": {"x": 9}}],
    )
    assert out == [
        {"a": 1, "tags": {"x": 1, "y": 2}, "labels": {"y": 2, "x": 1}, "hit": True},
        {"a": 1.0, "tags": {"x": 9}, "labels": {"x": 9}},
    ]


async def test_by_fields_keys_match_strictly() -> None:
    assert await merge({"mode": "by_fields", "fields": "id"}, [{"id": "1"}], [{"id": 1}]) == []


async def test_by_fields_chains_over_more_inputs() -> None:
    out = await merge(
        {"mode": "by_fields", "fields": "id", "inputs": 3, "join": "left"},
        [{"id": 1}, {"id": 2}],
        [{"id": 1, "b": "b1"}],
        [{"id": 2, "c": "c2"}, {"id": 1, "c": "c1"}],
    )
    assert out == [{"id": 1, "b": "b1", "c": "c1"}, {"id": 2, "c": "c2"}]


async def test_by_fields_merges_binary_right_over_left() -> None:
    left_bin = {"f": {"data": "YQ=="}, "g": {"data": "Yg=="}}
    result = await run_node(
        "merge",
        {"mode": "by_fields", "fields": "k"},
        inputs=[
            [{"json": {"k": 1}, "binary": left_bin}],
            [{"json": {"k": 1}, "binary": {"g": {"data": "Yw=="}}}],
        ],
    )
    assert result.outputs["main"] == [
        {"json": {"k": 1}, "binary": {"f": {"data": "YQ=="}, "g": {"data": "Yw=="}}}
    ]


async def test_by_position() -> None:
    left = [{"a": 1}, {"a": 2}, {"a": 3}]
    right = [{"b": 1, "a": "r"}, {"b": 2}]
    assert await merge({"mode": "by_position"}, left, right) == [
        {"a": "r", "b": 1},
        {"a": 2, "b": 2},
    ]
    assert await merge({"mode": "by_position", "include_unpaired": True}, left, right) == [
        {"a": "r", "b": 1},
        {"a": 2, "b": 2},
        {"a": 3},
    ]


async def test_by_position_with_three_inputs() -> None:
    out = await merge(
        {"mode": "by_position", "inputs": 3, "include_unpaired": True},
        [{"a": 1}],
        [{"b": 1}, {"b": 2}],
        [{"c": 1}],
    )
    assert out == [{"a": 1, "b": 1, "c": 1}, {"b": 2}]


async def test_cross() -> None:
    out = await merge({"mode": "cross"}, [{"a": 1}, {"a": 2}], [{"b": "x"}, {"b": "y"}])
    assert out == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]


async def test_cross_is_capped() -> None:
    side = [{"n": i} for i in range(1001)]
    result = await run_node("merge", {"mode": "cross"}, inputs=[side, side])
    assert result.status == "error" and result.error is not None
    assert result.error.message == (
        f"mode 'cross' would make 1002001 items (1001 x 1001); the limit is {MAX_CROSS_ITEMS}"
    )


async def test_choose() -> None:
    assert await merge({"mode": "choose"}, [{"a": 1}], [{"b": 1}]) == [{"a": 1}]
    assert await merge({"mode": "choose", "input": 1}, [{"a": 1}], [{"b": 1}, {"b": 2}]) == [
        {"b": 1},
        {"b": 2},
    ]


async def test_choose_and_cross_output_nothing_with_a_dead_input() -> None:
    assert await merge({"mode": "choose"}, [{"a": 1}], None) == []
    assert await merge({"mode": "cross"}, [{"a": 1}], None) == []


async def test_dead_input_modes_run_with_what_arrived() -> None:
    assert await merge({"mode": "append"}, None, [{"b": 1}]) == [{"b": 1}]
    assert await merge({"mode": "by_fields", "fields": "b", "join": "right"}, None, [{"b": 1}]) == [
        {"b": 1}
    ]
    assert await merge({"mode": "by_fields", "fields": "b"}, None, [{"b": 1}]) == []
    assert await merge({"mode": "by_position", "include_unpaired": True}, None, [{"b": 1}]) == [
        {"b": 1}
    ]


def branch_doc(mode: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    """S -> Check (json.ok); true -> Yes -> Merge input 0; false -> No -> Merge input 1."""
    return {
        "name": "branches",
        "nodes": [
            {"name": "S", "type": "test_source", "parameters": {"items": items}},
            {"name": "Check", "type": "if", "parameters": {"condition": "{{ json.ok }}"}},
            {"name": "Yes", "type": "noop"},
            {"name": "No", "type": "noop"},
            {"name": "Merge", "type": "merge", "parameters": mode},
        ],
        "connections": [
            {"from": "S", "to": "Check"},
            {"from": "Check", "output": "true", "to": "Yes"},
            {"from": "Check", "output": "false", "to": "No"},
            {"from": "Yes", "to": "Merge", "input": 0},
            {"from": "No", "to": "Merge", "input": 1},
        ],
    }


async def test_merge_waits_for_both_branches() -> None:
    record, items = await run_workflow(
        branch_doc({}, [{"ok": True, "n": 1}, {"ok": False, "n": 2}, {"ok": True, "n": 3}])
    )
    assert record.status == "success"
    assert [it["json"]["n"] for it in items] == [1, 3, 2]
    assert len(record.nodes["Merge"].runs) == 1
    assert record.nodes["Merge"].runs[0].input_items == 3


async def test_merge_runs_with_a_dead_branch() -> None:
    record, items = await run_workflow(branch_doc({}, [{"ok": True, "n": 1}]))
    assert record.status == "success"
    assert "No" not in record.nodes  # the false branch is dead
    assert [it["json"]["n"] for it in items] == [1]
    assert record.nodes["Merge"].runs[0].outputs == {"main": [{"json": {"ok": True, "n": 1}}]}


async def test_merge_choose_with_a_dead_branch_does_not_run() -> None:
    record, _ = await run_workflow(
        branch_doc({"mode": "choose", "input": 0}, [{"ok": True, "n": 1}])
    )
    assert record.status == "success"
    assert "Merge" not in record.nodes


async def test_merge_by_fields_across_branches() -> None:
    record, items = await run_workflow(
        branch_doc(
            {"mode": "by_fields", "fields": [{"left": "n", "right": "n"}], "join": "outer"},
            [{"ok": True, "n": 1}, {"ok": False, "n": 1}, {"ok": False, "n": 2}],
        )
    )
    assert record.status == "success"
    assert [it["json"] for it in items] == [{"ok": False, "n": 1}, {"ok": False, "n": 2}]


def problems(parameters: dict[str, Any], input_index: int = 0) -> list[str]:
    workflow = workflow_from_dict(
        {
            "name": "v",
            "nodes": [
                {"name": "S", "type": "test_source", "parameters": {"items": []}},
                {"name": "M", "type": "merge", "parameters": parameters},
            ],
            "connections": [{"from": "S", "to": "M", "input": input_index}],
        }
    )
    return [str(p) for p in problems_of(workflow, test_registry())]


def test_merge_validation() -> None:
    assert problems({}) == []
    assert problems({"inputs": 5}, 4) == []
    assert problems({}, 2) == ["connections[0] (S -> M): node 'M' has no input 2 (inputs: 0..1)"]
    assert problems({"inputs": 11}) == ["node 'M'.parameters.inputs: must be at most 10, got 11"]
    assert problems({"inputs": 1}) == ["node 'M'.parameters.inputs: must be at least 2, got 1"]
    assert problems({"mode": "zip"})[0].startswith("node 'M'.parameters.mode: must be one of")
    assert problems({"mode": "by_fields"}) == [
        "node 'M'.parameters.fields: mode 'by_fields' needs `fields`"
    ]
    assert problems({"mode": "by_fields", "fields": "id", "join": "full"})[0].startswith(
        "node 'M'.parameters.join: must be one of"
    )
    assert problems({"mode": "by_fields", "fields": [{"left": "a"}]}) != []
    assert problems({"mode": "by_fields", "fields": 3}) != []
    assert problems({"mode": "choose", "input": 2}) == [
        "node 'M'.parameters.input: there is no input 2 (inputs: 0..1)"
    ]
    assert problems({"mode": "choose", "input": 2, "inputs": 3}) == []
    assert problems({"include_unpaired": "yes"}) == [
        "node 'M'.parameters.include_unpaired: must be true or false, got text"
    ]


async def test_invalid_merge_never_runs() -> None:
    with pytest.raises(WorkflowInvalid):
        await run_node("merge", {"mode": "by_fields"}, inputs=[[{}], [{}]])
