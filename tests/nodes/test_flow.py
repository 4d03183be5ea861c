"""The flow nodes: if, filter, switch, noop, wait, stop_and_error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flowlite.errors import WorkflowInvalid
from flowlite.executor import Engine, Execution
from flowlite.model import workflow_from_dict
from flowlite.testing import run_node, run_workflow, test_registry
from flowlite.validation import problems_of

BINARY = {"file": {"mime_type": "text/plain", "file_name": "a.txt", "size": 1, "data": "YQ=="}}


def problems(node: dict[str, Any], *edges: dict[str, Any]) -> list[str]:
    """Validation problems of a workflow: a source feeding ``node`` (named N), plus edges."""
    workflow = workflow_from_dict(
        {
            "name": "v",
            "nodes": [
                {"name": "S", "type": "test_source", "parameters": {"items": []}},
                {"name": "N", **node},
                {"name": "T", "type": "noop"},
            ],
            "connections": [{"from": "S", "to": "N"}, *edges],
        }
    )
    return [str(p) for p in problems_of(workflow, test_registry())]


# --- if / filter -------------------------------------------------------------------------


async def test_if_routes_each_item_to_exactly_one_output() -> None:
    items = [{"n": 1}, {"n": 5}, {"n": 10}, {}]
    result = await run_node("if", {"condition": "{{ (json.get('n') or 0) > 4 }}"}, items)
    assert result.status == "success"
    assert result.json("true") == [{"n": 5}, {"n": 10}]
    assert result.json("false") == [{"n": 1}, {}]
    assert set(result.outputs) == {"true", "false"}


async def test_if_keeps_items_and_binary_unchanged() -> None:
    item = {"json": {"ok": True}, "binary": BINARY}
    result = await run_node("if", {"condition": "{{ json.ok }}"}, [item])
    assert result.outputs["true"] == [item]
    assert result.outputs["false"] == []


async def test_if_condition_truthiness_and_static_values() -> None:
    items = [{"v": 0}, {"v": ""}, {"v": []}, {"v": "x"}, {"v": [0]}, {"v": None}]
    result = await run_node("if", {"condition": "{{ json.v }}"}, items)
    assert result.json("true") == [{"v": "x"}, {"v": [0]}]
    always = await run_node("if", {"condition": True}, [{"a": 1}, {"a": 2}])
    assert always.json("true") == [{"a": 1}, {"a": 2}]
    never = await run_node("if", {"condition": False}, [{"a": 1}])
    assert never.json("false") == [{"a": 1}]


async def test_flow_nodes_with_no_items_output_nothing() -> None:
    for node in (
        {"type": "if", "parameters": {"condition": True}},
        {"type": "filter", "parameters": {"condition": True}},
        {"type": "switch", "parameters": {"rules": RULES, "fallback": "output"}},
        {"type": "noop"},
    ):
        doc = {"name": "empty", "nodes": [{"name": "N", **node}]}
        record, items = await run_workflow(doc, [])  # the start node gets an empty batch
        assert record.status == "success" and items == []
        run = record.nodes["N"].runs[0]
        assert run.input_items == 0 and all(v == [] for v in run.outputs.values())


async def test_filter_outputs_kept_and_discarded() -> None:
    result = await run_node(
        "filter",
        {"conditions": [{"left": "{{ json.status }}", "op": "in", "right": ["paid", "sent"]}]},
        [{"status": "paid"}, {"status": "open"}, {"status": "sent"}],
    )
    assert list(result.outputs) == ["kept", "discarded"]
    assert result.json() == [{"status": "paid"}, {"status": "sent"}]
    assert result.json("discarded") == [{"status": "open"}]


async def test_if_item_error_stop_names_the_condition_and_item() -> None:
    result = await run_node(
        "if",
        {"conditions": [{"left": "{{ json.n }}", "op": "gt", "right": 3}]},
        [{"n": 4}, {"n": "many"}],
    )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.item_index == 1 and result.error.node == "Node"
    assert result.error.message == (
        "conditions[0] (gt): cannot order text 'many' against number 3 with 'gt'"
    )


async def test_if_item_error_continue_and_error_output() -> None:
    params = {"conditions": [{"left": "{{ json.n }}", "op": "gt", "right": 3}]}
    items = [{"n": 4}, {"n": "many"}, {"n": 1}]
    cont = await run_node("if", params, items, on_error="continue")
    assert cont.status == "success"
    assert [it["n"] for it in cont.json("true")] == [4, "many"]
    assert "cannot order" in cont.json("true")[1]["error"]
    assert cont.json("false") == [{"n": 1}]
    routed = await run_node("if", params, items, on_error="error_output")
    assert routed.json("true") == [{"n": 4}]
    assert routed.json("false") == [{"n": 1}]
    assert [it["n"] for it in routed.json("error")] == ["many"]


async def test_if_expression_error_is_per_item() -> None:
    result = await run_node(
        "if",
        {"condition": "{{ json.a / json.b > 1 }}"},
        [{"a": 4, "b": 2}, {"a": 1, "b": 0}],
        on_error="error_output",
    )
    assert result.json("true") == [{"a": 4, "b": 2}]
    assert len(result.json("error")) == 1 and "condition" in result.json("error")[0]["error"]


def test_if_validation() -> None:
    assert problems({"type": "if", "parameters": {"condition": "{{ json.a }}"}}) == []
    assert problems({"type": "if", "parameters": {}}) == [
        "node 'N'.parameters.condition: give exactly one of `condition` or `conditions`"
    ]
    found = problems({"type": "if", "parameters": {"condition": 5, "combine": "xor"}})
    assert any("condition" in p and "must be" in p for p in found)
    assert any("combine" in p and "'xor'" in p for p in found)
    found = problems({"type": "if", "parameters": {"conditions": [{"left": 1, "op": "gt"}]}})
    assert found == ["node 'N'.parameters.conditions[0].right: operator 'gt' needs `right`"]
    found = problems({"type": "if", "parameters": {"conditions": [{"op": "eq", "rigth": 1}]}})
    assert any("rigth" in p and "unknown parameter" in p for p in found)
    found = problems({"type": "if", "parameters": {"condition": "{{ json. }}"}})
    assert found and found[0].startswith("node 'N'.parameters.condition")
    # edges by output name and by index
    assert (
        problems({"type": "if", "parameters": {"condition": True}}, edge("N", "T", "false")) == []
    )
    assert problems({"type": "if", "parameters": {"condition": True}}, edge("N", "T", 1)) == []
    found = problems({"type": "if", "parameters": {"condition": True}}, edge("N", "T", "yes"))
    assert found and "has no output 'yes'" in found[0]


def edge(source: str, target: str, output: Any) -> dict[str, Any]:
    return {"from": source, "to": target, "output": output}


# --- switch -------------------------------------------------------------------------------

RULES = [
    {"output": "big", "conditions": [{"left": "{{ json.n }}", "op": "gte", "right": 100}]},
    {"output": "even", "condition": "{{ json.n % 2 == 0 }}"},
]


async def test_switch_first_matching_rule_wins() -> None:
    result = await run_node("switch", {"rules": RULES}, [{"n": 200}, {"n": 4}, {"n": 3}])
    assert list(result.outputs) == ["big", "even"]
    assert result.json("big") == [{"n": 200}]
    assert result.json("even") == [{"n": 4}]  # 3 matches nothing and goes nowhere


async def test_switch_all_matches_and_fallback() -> None:
    result = await run_node(
        "switch",
        {"rules": RULES, "all_matches": True, "fallback": "output"},
        [{"n": 200}, {"n": 4}, {"n": 3}],
    )
    assert list(result.outputs) == ["big", "even", "fallback"]
    assert result.json("big") == [{"n": 200}]
    assert result.json("even") == [{"n": 200}, {"n": 4}]
    assert result.json("fallback") == [{"n": 3}]


async def test_switch_by_value_names_or_numbers_the_output() -> None:
    result = await run_node(
        "switch",
        {"value": "{{ json.to }}", "outputs": ["a", "b", "c"], "fallback": "output"},
        [{"to": "b"}, {"to": 0}, {"to": "2"}, {"to": 7}, {"to": "zz"}, {"to": True}, {}],
    )
    assert result.json("a") == [{"to": 0}]
    assert result.json("b") == [{"to": "b"}]
    assert result.json("c") == [{"to": "2"}]
    assert result.json("fallback") == [{"to": 7}, {"to": "zz"}, {"to": True}, {}]


async def test_switch_by_value_without_fallback_drops_unmatched() -> None:
    result = await run_node(
        "switch", {"value": "{{ json.k }}", "outputs": ["x"]}, [{"k": "x"}, {"k": "y"}]
    )
    assert result.outputs == {"x": [{"json": {"k": "x"}}]}


async def test_switch_item_errors_go_per_on_error() -> None:
    rules = [{"output": "pos", "conditions": [{"left": "{{ json.n }}", "op": "gt", "right": 0}]}]
    items = [{"n": 1}, {"n": [1]}]
    cont = await run_node("switch", {"rules": rules}, items, on_error="continue")
    assert [it["n"] for it in cont.json("pos")] == [1, [1]]
    assert "rules[0].conditions[0] (gt)" in cont.json("pos")[1]["error"]
    routed = await run_node("switch", {"rules": rules}, items, on_error="error_output")
    assert routed.json("pos") == [{"n": 1}]
    assert routed.json("error")[0]["n"] == [1]
    stopped = await run_node("switch", {"rules": rules}, items)
    assert stopped.status == "error" and stopped.error is not None
    assert stopped.error.item_index == 1


async def test_switch_outputs_feed_named_edges() -> None:
    doc = {
        "name": "route",
        "nodes": [
            {"name": "S", "type": "test_source", "parameters": {"items": [{"n": 200}, {"n": 3}]}},
            {
                "name": "Route",
                "type": "switch",
                "parameters": {"rules": RULES, "fallback": "output"},
            },
            {"name": "Big", "type": "noop"},
            {"name": "Other", "type": "noop"},
        ],
        "connections": [
            {"from": "S", "to": "Route"},
            {"from": "Route", "output": "big", "to": "Big"},
            {"from": "Route", "output": "fallback", "to": "Other"},
        ],
    }
    record, _ = await run_workflow(doc)
    assert record.status == "success"
    assert record.nodes["Big"].runs[0].outputs == {"main": [{"json": {"n": 200}}]}
    assert record.nodes["Other"].runs[0].outputs == {"main": [{"json": {"n": 3}}]}
    assert list(record.nodes["Route"].runs[0].outputs) == ["big", "even", "fallback"]


def test_switch_validation() -> None:
    ok = {"type": "switch", "parameters": {"rules": RULES}}
    assert problems(ok, edge("N", "T", "even")) == []
    assert problems(ok, edge("N", "T", 1)) == []
    found = problems(ok, edge("N", "T", "fallback"))
    assert found and "has no output 'fallback' (outputs: big, even)" in found[0]
    with_fallback = {"type": "switch", "parameters": {"rules": RULES, "fallback": "output"}}
    assert problems(with_fallback, edge("N", "T", "fallback")) == []
    by_value = {"type": "switch", "parameters": {"value": "{{ json.k }}", "outputs": ["p", "q"]}}
    assert problems(by_value, edge("N", "T", "q")) == []

    def of(parameters: dict[str, Any]) -> list[str]:
        return problems({"type": "switch", "parameters": parameters})

    assert of({}) == ["node 'N'.parameters.rules: give exactly one of `rules` or `value`"]
    assert of({"rules": RULES, "value": "x", "outputs": ["x"]})[0].endswith(
        "give exactly one of `rules` or `value`"
    )
    assert of({"value": "{{ json.k }}"}) == [
        "node 'N'.parameters.outputs: `value` needs `outputs`: the output names"
    ]
    assert of({"rules": []}) == ["node 'N'.parameters.rules: must hold at least one rule"]
    twice = [{"output": "a", "condition": True}, {"output": "a", "condition": False}]
    assert of({"rules": twice}) == ["node 'N'.parameters.rules: output 'a' is named twice"]
    reserved = [{"output": "fallback", "condition": True}]
    assert of({"rules": reserved, "fallback": "output"}) == [
        "node 'N'.parameters.rules: output name 'fallback' is reserved"
    ]
    assert of({"rules": [{"output": "error", "condition": True}]}) == [
        "node 'N'.parameters.rules: output name 'error' is reserved"
    ]
    assert of({"rules": [{"output": "a"}]}) == [
        "node 'N'.parameters.rules[0].condition: give exactly one of `condition` or `conditions`"
    ]
    found = of({"rules": [{"condition": True}]})
    assert found == ["node 'N'.parameters.rules[0].output: is required"]
    found = of(
        {"rules": [{"output": "a", "conditions": [{"left": 1, "op": "bigger", "right": 0}]}]}
    )
    assert any("rules[0].conditions[0].op" in p and "'bigger'" in p for p in found)
    assert of({"rules": RULES, "outputs": ["x"]}) == [
        "node 'N'.parameters.outputs: only used with `value` (rules name their outputs)"
    ]
    assert any("all_matches" in p for p in of({"rules": RULES, "all_matches": "yes"}))


# --- noop, stop_and_error ----------------------------------------------------------------


async def test_noop_passes_items_through() -> None:
    items = [{"json": {"a": 1}, "binary": BINARY}, {"json": {"b": 2}}]
    result = await run_node("noop", {}, items)
    assert result.outputs == {"main": items}


async def test_stop_and_error_fails_with_the_message() -> None:
    result = await run_node(
        "stop_and_error", {"message": "order {{ json.id }} is invalid"}, [{"id": 7}, {"id": 8}]
    )
    assert result.status == "error" and result.error is not None
    assert result.error.message == "order 7 is invalid"
    assert result.error.node == "Node" and result.error.error_class == "NodeError"
    assert result.record.error is not None
    assert result.record.error.message == "order 7 is invalid"


async def test_stop_and_error_default_message_and_on_error_continue() -> None:
    result = await run_node("stop_and_error", {}, [{"a": 1}], on_error="continue")
    assert result.status == "success"
    assert result.json() == [{"a": 1, "error": "the workflow was stopped by a stop_and_error node"}]
    typed = await run_node(
        "stop_and_error", {"message": "{{ json.detail }}"}, [{"detail": {"c": 1}}]
    )
    assert typed.error is not None and typed.error.message == '{"c": 1}'


# --- wait ---------------------------------------------------------------------------------


def waiting_engine() -> tuple[Engine, list[dt.datetime]]:
    seen: list[dt.datetime] = []

    async def waiter(execution: Execution, when: dt.datetime) -> None:
        seen.append(when)

    return Engine(test_registry(), waiter=waiter), seen


async def test_wait_seconds() -> None:
    engine, seen = waiting_engine()
    before = dt.datetime.now(dt.UTC)
    result = await run_node("wait", {"seconds": 90}, [{"a": 1}, {"a": 2}], engine=engine)
    assert result.json() == [{"a": 1}, {"a": 2}]
    assert len(seen) == 1 and seen[0].tzinfo is not None
    assert dt.timedelta(seconds=89) < seen[0] - before < dt.timedelta(seconds=91)


async def test_wait_until_with_offset_naive_and_expression() -> None:
    engine, seen = waiting_engine()
    await run_node("wait", {"until": "2030-01-01T12:00:00+02:00"}, [{}], engine=engine)
    await run_node(
        "wait", {"until": "{{ json.at }}"}, [{"at": "2030-01-01T10:00:00Z"}], engine=engine
    )
    assert seen == [dt.datetime(2030, 1, 1, 10, tzinfo=dt.UTC)] * 2
    assert all(when.utcoffset() == dt.timedelta(0) for when in seen)


async def test_wait_until_naive_is_in_the_workflow_timezone() -> None:
    engine, seen = waiting_engine()
    doc = {
        "name": "w",
        "settings": {"timezone": "Europe/Berlin"},
        "nodes": [{"name": "W", "type": "wait", "parameters": {"until": "2030-07-01T12:00:00"}}],
    }
    record, items = await run_workflow(doc, [{"x": 1}], engine=engine)
    assert record.status == "success" and items == [{"json": {"x": 1}}]
    assert seen == [dt.datetime(2030, 7, 1, 10, tzinfo=dt.UTC)]


async def test_wait_really_waits_with_the_default_waiter() -> None:
    result = await run_node("wait", {"seconds": 0.05}, [{"a": 1}])
    assert result.status == "success" and result.run is not None
    assert result.run.duration_ms >= 45


async def test_wait_bad_values_fail_the_node() -> None:
    bad_until = await run_node("wait", {"until": "{{ json.at }}"}, [{"at": "next tuesday"}])
    assert bad_until.error is not None
    assert (
        bad_until.error.message == "parameter 'until' is not an ISO 8601 datetime: 'next tuesday'"
    )
    bad_seconds = await run_node("wait", {"seconds": "{{ json.s }}"}, [{"s": -1}])
    assert bad_seconds.error is not None
    assert bad_seconds.error.message == "parameter 'seconds' must be a number >= 0, got -1"


def test_wait_validation() -> None:
    assert problems({"type": "wait", "parameters": {"seconds": 1}}) == []
    assert problems({"type": "wait", "parameters": {}}) == [
        "node 'N'.parameters.seconds: give exactly one of `seconds` or `until`"
    ]
    assert problems({"type": "wait", "parameters": {"seconds": 1, "until": "2030-01-01"}}) == [
        "node 'N'.parameters.seconds: give exactly one of `seconds` or `until`"
    ]
    found = problems({"type": "wait", "parameters": {"seconds": -1}})
    assert found == ["node 'N'.parameters.seconds: must be at least 0, got -1"]
    found = problems({"type": "wait", "parameters": {"seconds": "soon"}})
    assert found == ["node 'N'.parameters.seconds: must be a number, got text"]


async def test_invalid_parameters_stop_run_node() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_node("wait", {}, [{}])
    assert "give exactly one of `seconds` or `until`" in str(caught.value)
