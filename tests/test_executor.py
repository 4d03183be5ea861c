"""Execution semantics (spec section 3), one test or more per rule, through the real executor.

The node types used here are small test types registered next to the built-ins, so that these
tests pin the executor's behaviour independently of the built-in nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from flowlite.errors import NodeError, UserError, WorkflowInvalid
from flowlite.executor import Engine
from flowlite.model import Workflow, workflow_from_dict
from flowlite.record import record_to_dict
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param
from flowlite.testing import run_workflow, test_registry


class Tag(NodeType):
    """Adds `tag` (its parameter) to every item; fails items whose json has `fail`."""

    type = "t_tag"
    params = (Param("tag", "string"),)

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        out: list[Item] = []
        for i, it in enumerate(items):
            try:
                if it["json"].get("fail") and "error" not in it["json"]:
                    raise NodeError(f"item {i} asked to fail")
                out.append(
                    {
                        "json": {
                            **it["json"],
                            "tags": [*it["json"].get("tags", []), ctx.param("tag", i)],
                        }
                    }
                )
            except NodeError as exc:
                failed = ctx.item_error(i, exc)
                if failed is not None:
                    out.append(failed)
        return {"main": out}


class Branch(NodeType):
    """Sends items with json.side == 'b' to output b, others to a."""

    type = "t_branch"
    outputs = ("a", "b")

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {
            "a": [it for it in items if it["json"].get("side") != "b"],
            "b": [it for it in items if it["json"].get("side") == "b"],
        }


class Join(NodeType):
    """Two inputs; emits one item listing what each input received."""

    type = "t_join"
    inputs = 2

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        seen = [None if batch is None else len(batch) for batch in ctx.inputs]
        return {"main": [{"json": {"seen": seen}}]}


class JoinAll(Join):
    type = "t_join_all"
    requires_all_inputs = True


class Sleep(NodeType):
    type = "t_sleep"
    params = (Param("seconds", "number"),)

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        await asyncio.sleep(ctx.param("seconds"))
        return {"main": items}


class Meet(NodeType):
    """Two of these in parallel branches wait for each other: deadlocks unless concurrent."""

    type = "t_meet"
    barrier: ClassVar[asyncio.Barrier | None] = None

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        assert Meet.barrier is not None
        await Meet.barrier.wait()
        return {"main": items}


class Flaky(NodeType):
    """Fails until it has been tried `fail_times` times."""

    type = "t_flaky"
    params = (Param("fail_times", "integer"),)
    tries: ClassVar[int] = 0

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        Flaky.tries += 1
        if Flaky.tries <= ctx.param("fail_times"):
            raise NodeError(f"try {Flaky.tries} failed")
        return {"main": items}


class Nothing(NodeType):
    type = "t_nothing"

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {"main": []}


class Boom(NodeType):
    """A node with a bug: raises a plain Python exception."""

    type = "t_boom"

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {"main": [{"json": {"x": 1 / 0}}]}


def make_engine(**options: Any) -> Engine:
    registry = test_registry()
    for node_type in (Tag, Branch, Join, JoinAll, Sleep, Meet, Flaky, Nothing, Boom):
        registry.add(node_type)
    return Engine(registry, **options)


def flow(nodes: list[dict[str, Any]], edges: list[tuple[Any, ...]], **extra: Any) -> dict[str, Any]:
    connections = []
    for edge in edges:
        connection: dict[str, Any] = {"from": edge[0], "to": edge[1]}
        if len(edge) > 2 and edge[2] is not None:
            connection["output"] = edge[2]
        if len(edge) > 3:
            connection["input"] = edge[3]
        connections.append(connection)
    return {"name": "test", "nodes": nodes, "connections": connections, **extra}


def src(name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "type": "test_source", "parameters": {"items": items}}


def tag(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "t_tag", "parameters": {"tag": name}, **fields}


async def test_linear_chain_passes_items_and_records_runs() -> None:
    doc = flow([src("S", [{"n": 1}, {"n": 2}]), tag("A"), tag("B")], [("S", "A"), ("A", "B")])
    record, last = await run_workflow(doc, engine=make_engine())
    assert record.status == "success"
    assert [it["json"] for it in last] == [
        {"n": 1, "tags": ["A", "B"]},
        {"n": 2, "tags": ["A", "B"]},
    ]
    run = record.nodes["B"].runs[0]
    assert (run.index, run.status, run.input_items) == (0, "success", 2)
    assert run.duration_ms >= 0 and run.started_at.endswith("Z")


async def test_record_has_the_spec_shape() -> None:
    record, _ = await run_workflow(
        flow([src("S", [{}]), tag("A")], [("S", "A")]), engine=make_engine()
    )
    data = record_to_dict(record)
    assert set(data) == {
        "id",
        "workflow",
        "mode",
        "status",
        "started_at",
        "finished_at",
        "error",
        "nodes",
    }
    assert data["workflow"]["name"] == "test" and data["mode"] == "cli"
    assert set(data["nodes"]["A"]["runs"][0]) >= {
        "index",
        "status",
        "started_at",
        "duration_ms",
        "input_items",
        "outputs",
    }
    assert data["nodes"]["A"]["runs"][0]["outputs"] == {"main": [{"json": {"tags": ["A"]}}]}


async def test_two_parents_on_one_input_make_two_runs() -> None:
    doc = flow(
        [src("S1", [{"n": 1}]), src("S2", [{"n": 2}, {"n": 3}]), tag("A")],
        [("S1", "A"), ("S2", "A")],
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    runs = record.nodes["A"].runs
    assert [r.index for r in runs] == [0, 1]
    assert sorted(r.input_items for r in runs) == [1, 2]


async def test_multi_input_node_waits_for_both_inputs() -> None:
    doc = flow(
        [
            src("S", [{}]),
            {"name": "Slow", "type": "t_sleep", "parameters": {"seconds": 0.05}},
            tag("Fast"),
            {"name": "J", "type": "t_join"},
        ],
        [("S", "Slow"), ("S", "Fast"), ("Slow", "J", None, 0), ("Fast", "J", None, 1)],
    )
    record, last = await run_workflow(doc, engine=make_engine())
    assert len(record.nodes["J"].runs) == 1
    assert last[0]["json"] == {"seen": [1, 1]}


async def test_dead_branch_lets_multi_input_node_run_with_what_arrived() -> None:
    doc = flow(
        [
            src("S", [{"side": "a"}]),
            {"name": "Br", "type": "t_branch"},
            tag("OnB"),
            {"name": "J", "type": "t_join"},
        ],
        [("S", "Br"), ("Br", "J", "a", 0), ("Br", "OnB", "b"), ("OnB", "J", None, 1)],
    )
    record, last = await run_workflow(doc, engine=make_engine())
    assert "OnB" not in record.nodes  # zero items: the branch ended
    assert last[0]["json"] == {"seen": [1, None]}


async def test_node_requiring_all_inputs_does_not_run_when_one_is_dead() -> None:
    doc = flow(
        [
            src("S", [{"side": "a"}]),
            {"name": "Br", "type": "t_branch"},
            {"name": "J", "type": "t_join_all"},
            tag("After"),
        ],
        [("S", "Br"), ("Br", "J", "a", 0), ("Br", "J", "b", 1), ("J", "After")],
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "success"
    assert "J" not in record.nodes and "After" not in record.nodes


async def test_zero_items_end_the_branch_unless_always_output() -> None:
    doc = flow(
        [src("S", [{}]), {"name": "N", "type": "t_nothing"}, tag("A")], [("S", "N"), ("N", "A")]
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert "A" not in record.nodes
    doc["nodes"][1]["always_output"] = True
    record, last = await run_workflow(doc, engine=make_engine())
    assert [it["json"] for it in last] == [{"tags": ["A"]}]


async def test_independent_branches_run_concurrently() -> None:
    Meet.barrier = asyncio.Barrier(2)
    doc = flow(
        [src("S", [{}]), {"name": "M1", "type": "t_meet"}, {"name": "M2", "type": "t_meet"}],
        [("S", "M1"), ("S", "M2")],
        settings={"timeout": 5},
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "success"  # sequential execution would have hit the timeout


async def test_concurrent_runs_are_recorded_in_start_order_deterministically() -> None:
    doc = flow(
        [
            src("S", [{}]),
            {"name": "Slow", "type": "t_sleep", "parameters": {"seconds": 0.03}},
            tag("Fast"),
            tag("End"),
        ],
        [("S", "Slow"), ("S", "Fast"), ("Slow", "End"), ("Fast", "End")],
    )
    first, _ = await run_workflow(doc, engine=make_engine())
    second, _ = await run_workflow(doc, engine=make_engine())
    assert list(first.nodes) == list(second.nodes) == ["S", "Slow", "Fast", "End"]
    assert [r.outputs for r in first.nodes["End"].runs] == [
        r.outputs for r in second.nodes["End"].runs
    ]


async def test_retry_then_success() -> None:
    Flaky.tries = 0
    doc = flow(
        [
            src("S", [{}]),
            {
                "name": "F",
                "type": "t_flaky",
                "parameters": {"fail_times": 2},
                "retry": {"max_tries": 3, "wait": 0.001, "backoff": 2},
            },
        ],
        [("S", "F")],
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "success" and Flaky.tries == 3
    assert len(record.nodes["F"].runs) == 1


async def test_retry_gives_up_after_max_tries() -> None:
    Flaky.tries = 0
    doc = flow(
        [
            src("S", [{}]),
            {
                "name": "F",
                "type": "t_flaky",
                "parameters": {"fail_times": 5},
                "retry": {"max_tries": 2},
            },
        ],
        [("S", "F")],
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "error" and Flaky.tries == 2
    assert record.error is not None and record.error.message == "try 2 failed"


async def test_stop_fails_the_execution_keeps_partial_results_and_cancels_branches() -> None:
    doc = flow(
        [
            src("S", [{"n": 1}, {"fail": True}]),
            tag("Bad"),
            tag("Ok"),
            {"name": "Slow", "type": "t_sleep", "parameters": {"seconds": 30}},
            tag("Never"),
        ],
        [("S", "Slow"), ("S", "Ok"), ("Ok", "Bad"), ("Bad", "Never")],
    )
    doc["nodes"][0]["parameters"]["items"] = [{"n": 1}]
    doc["nodes"].append(src("S2", [{"fail": True}]))
    doc["connections"].append({"from": "S2", "to": "Bad"})
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "error"
    assert record.error is not None
    assert (record.error.node, record.error.item_index) == ("Bad", 0)
    assert record.error.error_class == "NodeError" and "asked to fail" in record.error.message
    assert record.nodes["Ok"].runs[0].status == "success"  # partial results are kept
    assert record.nodes["Slow"].runs[0].status == "canceled"
    assert "Never" not in record.nodes


async def test_continue_puts_failed_items_on_the_first_output_in_place() -> None:
    doc = flow(
        [src("S", [{"n": 1}, {"fail": True}, {"n": 3}]), tag("A", on_error="continue")],
        [("S", "A")],
    )
    record, last = await run_workflow(doc, engine=make_engine())
    assert record.status == "success"
    assert [it["json"] for it in last] == [
        {"n": 1, "tags": ["A"]},
        {"fail": True, "error": "item 1 asked to fail"},
        {"n": 3, "tags": ["A"]},
    ]


async def test_error_output_diverts_only_failed_items() -> None:
    doc = flow(
        [
            src("S", [{"n": 1}, {"fail": True}]),
            tag("A", on_error="error_output"),
            tag("Good"),
            tag("Bad"),
        ],
        [("S", "A"), ("A", "Good"), ("A", "Bad", "error")],
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "success"
    assert record.nodes["Good"].runs[0].outputs["main"] == [
        {"json": {"n": 1, "tags": ["A", "Good"]}}
    ]
    assert record.nodes["Bad"].runs[0].outputs["main"] == [
        {"json": {"fail": True, "error": "item 1 asked to fail", "tags": ["Bad"]}}
    ]


async def test_a_node_bug_is_an_internal_error_handled_per_on_error() -> None:
    doc = flow([src("S", [{"n": 1}]), {"name": "B", "type": "t_boom"}], [("S", "B")])
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "error" and record.error is not None
    assert record.error.error_class == "ZeroDivisionError" and record.error.origin == "internal"
    doc["nodes"][1]["on_error"] = "continue"
    record, last = await run_workflow(doc, engine=make_engine())
    assert record.status == "success" and last[0]["json"]["error"].startswith("ZeroDivisionError")


async def test_execute_once_uses_the_first_item_only() -> None:
    doc = flow([src("S", [{"n": 1}, {"n": 2}]), tag("A", execute_once=True)], [("S", "A")])
    _, last = await run_workflow(doc, engine=make_engine())
    assert [it["json"] for it in last] == [{"n": 1, "tags": ["A"]}]


async def test_disabled_node_passes_its_input_through() -> None:
    doc = flow(
        [src("S", [{"n": 1}]), tag("Off", disabled=True), tag("B")], [("S", "Off"), ("Off", "B")]
    )
    record, last = await run_workflow(doc, engine=make_engine())
    assert "Off" not in record.nodes
    assert [it["json"] for it in last] == [{"n": 1, "tags": ["B"]}]


async def test_node_timeout_fails_the_node() -> None:
    doc = flow(
        [
            src("S", [{}]),
            {"name": "Z", "type": "t_sleep", "parameters": {"seconds": 5}, "timeout": 0.05},
        ],
        [("S", "Z")],
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "error" and record.error is not None
    assert record.error.error_class == "NodeTimeout" and "0.05 s" in record.error.message


async def test_workflow_timeout_cancels_with_a_reason() -> None:
    doc = flow(
        [src("S", [{}]), {"name": "Z", "type": "t_sleep", "parameters": {"seconds": 5}}],
        [("S", "Z")],
        settings={"timeout": 0.05},
    )
    record, _ = await run_workflow(doc, engine=make_engine())
    assert record.status == "canceled"
    assert record.cancel_reason == "the workflow timed out after 0.05 s"
    assert record.nodes["Z"].runs[0].status == "canceled"


async def test_cancel_a_running_execution() -> None:
    engine = make_engine()
    doc = flow(
        [src("S", [{}]), {"name": "Z", "type": "t_sleep", "parameters": {"seconds": 30}}],
        [("S", "Z")],
    )
    execution = engine.prepare(workflow_from_dict(doc))
    task = asyncio.create_task(execution.run())
    while "Z" not in execution.record.nodes:
        await asyncio.sleep(0.001)
    assert engine.cancel(execution.id, "stopped by test")
    record = await task
    assert record.status == "canceled" and record.cancel_reason == "stopped by test"
    assert execution.id not in engine.running


async def test_pinned_data_is_used_by_manual_runs_only() -> None:
    doc = flow(
        [src("S", [{"n": 1}]), tag("A"), tag("B")],
        [("S", "A"), ("A", "B")],
        pinned={"A": [{"json": {"pinned": True}}]},
    )
    record, last = await run_workflow(doc, engine=make_engine(), mode="manual")
    assert record.nodes["A"].runs[0].pinned
    assert [it["json"] for it in last] == [{"pinned": True, "tags": ["B"]}]
    _, last = await run_workflow(doc, engine=make_engine())
    assert [it["json"] for it in last] == [{"n": 1, "tags": ["A", "B"]}]


async def test_start_node_and_input_items() -> None:
    doc = flow(
        [{"name": "T", "type": "manual_trigger"}, tag("A"), tag("B")], [("T", "A"), ("A", "B")]
    )
    _, last = await run_workflow(doc, [{"n": 5}], engine=make_engine())
    assert [it["json"] for it in last] == [{"n": 5, "tags": ["A", "B"]}]
    _, last = await run_workflow(doc, [{"n": 6}], engine=make_engine(), start="B")
    assert [it["json"] for it in last] == [{"n": 6, "tags": ["B"]}]
    with pytest.raises(UserError, match="no node named 'X'"):
        await run_workflow(doc, engine=make_engine(), start="X")


async def test_a_workflow_without_trigger_starts_at_its_roots() -> None:
    _, last = await run_workflow(
        flow([tag("A"), tag("B")], [("A", "B")]), {"n": 1}, engine=make_engine()
    )
    assert [it["json"] for it in last] == [{"n": 1, "tags": ["A", "B"]}]


async def test_an_invalid_workflow_never_starts() -> None:
    doc = flow([tag("A"), {"name": "A", "type": "nope"}], [("A", "Missing")])
    with pytest.raises(WorkflowInvalid) as caught:
        await run_workflow(doc, engine=make_engine())
    messages = [str(p) for p in caught.value.problems]
    assert any("duplicate node name" in m for m in messages)
    assert any("no node named 'Missing'" in m for m in messages)


class Resolver:
    def __init__(self, workflows: dict[str, dict[str, Any]]) -> None:
        self.workflows = workflows

    async def __call__(
        self, reference: str, *, caller: Workflow | None
    ) -> tuple[str | None, Workflow]:
        return reference, workflow_from_dict(self.workflows[reference])


async def test_failed_execution_runs_its_error_workflow_once() -> None:
    seen: list[Any] = []

    class Collect(NodeType):
        type = "t_collect"

        async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
            seen.extend(it["json"] for it in items)
            raise NodeError("the error workflow fails too")

    handler = flow(
        [{"name": "E", "type": "error_trigger"}, {"name": "C", "type": "t_collect"}],
        [("E", "C")],
        settings={"error_workflow": "handler"},
    )
    engine = make_engine(resolver=Resolver({"handler": handler}))
    engine.registry.add(Collect)
    failing = flow(
        [src("S", [{"fail": True}]), tag("A")], [("S", "A")], settings={"error_workflow": "handler"}
    )
    record, _ = await run_workflow(failing, engine=engine, workflow_id="wf1")
    assert record.status == "error"
    assert len(seen) == 1  # the failing error workflow did not start itself again
    summary = seen[0]
    assert summary["workflow"] == {"id": "wf1", "name": "test"}
    assert summary["execution"]["id"] == record.id and summary["execution"]["last_node"] == "A"
    assert summary["execution"]["error"]["node"] == "A" and summary["execution"]["mode"] == "cli"
    seen.clear()
    await run_workflow(failing, engine=engine, mode="manual")
    assert seen == []  # manual executions do not start error workflows


async def parking_waiter(execution: Any, when: Any) -> None:
    from flowlite.executor import Suspend

    if execution.can_suspend():
        raise Suspend(when)
    await asyncio.sleep(0)


async def test_a_long_wait_parks_the_execution_and_resume_continues_it() -> None:
    import msgspec

    from flowlite.record import ExecutionRecord

    doc = flow(
        [
            src("S", [{"n": 1}]),
            tag("A"),
            {"name": "W", "type": "wait", "parameters": {"seconds": 3600}},
            tag("B"),
        ],
        [("S", "A"), ("A", "W"), ("W", "B")],
    )
    workflow = workflow_from_dict(doc)
    engine = make_engine(waiter=parking_waiter)
    record = await engine.execute(workflow)
    assert record.status == "waiting" and "B" not in record.nodes
    assert record.wait is not None and record.wait["node"] == "W" and record.wait["until"]
    assert record.wait["items"] == [{"json": {"n": 1, "tags": ["A"]}}]
    assert record.nodes["W"].runs[0].status == "waiting"

    # as after a restart: the record comes back from storage into a new engine
    stored = msgspec.json.decode(msgspec.json.encode(record), type=ExecutionRecord)
    resumed = await make_engine().resume(workflow, stored).run()
    assert resumed.status == "success" and resumed.id == record.id and resumed.wait is None
    assert resumed.nodes["W"].runs[0].status == "success"
    assert resumed.nodes["B"].runs[0].outputs["main"] == [{"json": {"n": 1, "tags": ["A", "B"]}}]


async def test_resume_by_webhook_passes_the_given_items() -> None:
    doc = flow(
        [
            src("S", [{"n": 1}]),
            {"name": "W", "type": "wait", "parameters": {"seconds": 3600}},
            tag("B"),
        ],
        [("S", "W"), ("W", "B")],
    )
    workflow = workflow_from_dict(doc)
    record = await make_engine(waiter=parking_waiter).execute(workflow)
    resumed = await make_engine().resume(workflow, record, [{"json": {"approved": True}}]).run()
    assert resumed.nodes["B"].runs[0].outputs["main"] == [
        {"json": {"approved": True, "tags": ["B"]}}
    ]
    with pytest.raises(UserError, match="is not waiting"):
        make_engine().resume(workflow, resumed)


async def test_a_wait_beside_a_running_branch_is_not_parked() -> None:
    doc = flow(
        [
            src("S", [{}]),
            {"name": "W", "type": "wait", "parameters": {"seconds": 0.01}},
            {"name": "Z", "type": "t_sleep", "parameters": {"seconds": 0.05}},
        ],
        [("S", "W"), ("S", "Z")],
    )
    record, _ = await run_workflow(doc, engine=make_engine(waiter=parking_waiter))
    assert record.status == "success"
