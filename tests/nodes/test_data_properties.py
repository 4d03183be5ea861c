"""Property tests of the list nodes' invariants, through the real executor.

sort: a stable permutation ordered by the key, missing values last for both orders.
limit: min(n, len) items, from the left or the right end.
remove_duplicates: first occurrences only, no duplicates left, a subsequence of the input.
summarize: group counts add up to the input size; groups in order of first appearance.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlite.testing import NodeResult, run_node, run_workflow

MISSING = object()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "b", "B", "ab", "1"]),
)
maybe_scalars = st.one_of(st.just(MISSING), scalars)
small_values = st.one_of(st.just(MISSING), st.integers(0, 3), st.sampled_from(["x", "y"]))

SETTINGS = settings(max_examples=60, deadline=None)


def items_of(values: list[Any], field: str = "k") -> list[dict[str, Any]]:
    """One item per value, each with its position in `i`; MISSING leaves the field out."""
    return [{"i": i} if v is MISSING else {"i": i, field: v} for i, v in enumerate(values)]


def run(type_name: str, parameters: dict[str, Any], items: list[Any]) -> NodeResult:
    async def go() -> NodeResult:
        if items:
            return await run_node(type_name, parameters, items)
        document = {
            "name": "w",
            "nodes": [{"name": "Node", "type": type_name, "parameters": parameters}],
        }
        record, _ = await run_workflow(document, [])
        return NodeResult(record, record.nodes["Node"].runs[0])

    result = asyncio.run(go())
    assert result.status == "success", result.error
    return result


def kind(value: Any) -> int:
    """The documented order of kinds: booleans, numbers, text."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return 1
    return 2


def equal_json(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    return kind(a) == kind(b) and a == b and (a is None) == (b is None)


@SETTINGS
@given(st.lists(maybe_scalars, max_size=25), st.sampled_from(["asc", "desc"]))
def test_sort_is_a_stable_ordered_permutation_with_missing_last(
    values: list[Any], order: str
) -> None:
    items = items_of(values)
    out = run("sort", {"by": [{"field": "k", "order": order}]}, items).json()
    assert sorted(it["i"] for it in out) == list(range(len(items)))
    empty = [it.get("k") is None for it in out]
    assert empty == sorted(empty), "missing and null values come last"
    for a, b in itertools.pairwise(out):
        if a.get("k") is None or b.get("k") is None:
            if a.get("k") is None and b.get("k") is None:
                assert a["i"] < b["i"]
            continue
        left, right = (kind(a["k"]), a["k"]), (kind(b["k"]), b["k"])
        if order == "desc":
            left, right = right, left
        assert left <= right
        if left == right:
            assert a["i"] < b["i"], "equal keys keep their input order"


@SETTINGS
@given(st.lists(st.tuples(small_values, small_values), max_size=25))
def test_sort_by_two_keys_orders_lexicographically(pairs: list[tuple[Any, Any]]) -> None:
    items = [
        {"i": i, **({} if a is MISSING else {"a": a}), **({} if b is MISSING else {"b": b})}
        for i, (a, b) in enumerate(pairs)
    ]
    out = run("sort", {"by": [{"field": "a"}, {"field": "b", "order": "desc"}]}, items).json()

    def key(it: dict[str, Any]) -> tuple[Any, ...]:
        a, b = it.get("a", MISSING), it.get("b", MISSING)
        a_key = (1, 0, 0) if a is MISSING else (0, kind(a), a)
        b_key = (1, 0, 0) if b is MISSING else (0, -kind(b), b)
        return a_key, b_key

    keys = [key(it) for it in out]
    for (ka, kb), (la, lb) in itertools.pairwise(keys):
        assert ka <= la
        if ka == la and kb[0] == lb[0] == 0 and kb[1] == lb[1]:
            assert kb[2] >= lb[2], "b descends within equal a"
    assert sorted(it["i"] for it in out) == list(range(len(items)))


@SETTINGS
@given(
    st.lists(st.integers(), max_size=30),
    st.integers(0, 40),
    st.sampled_from(["first", "last"]),
)
def test_limit_takes_min_n_len_items_from_one_end(values: list[int], count: int, keep: str) -> None:
    items = items_of(values)
    out = run("limit", {"max_items": count, "keep": keep}, items).json()
    size = min(count, len(items))
    assert len(out) == size
    expected = items[:size] if keep == "first" else items[len(items) - size :]
    assert out == expected


@SETTINGS
@given(st.lists(maybe_scalars.filter(lambda v: v is not MISSING), max_size=30))
def test_remove_duplicates_keeps_first_occurrences_of_a_field(values: list[Any]) -> None:
    items = items_of(values)
    out = run("remove_duplicates", {"fields": "k"}, items).json()
    positions = [it["i"] for it in out]
    assert positions == sorted(positions), "a subsequence of the input"
    for a_index, a in enumerate(out):
        for b in out[a_index + 1 :]:
            assert not equal_json(a["k"], b["k"]), "no duplicates are left"
    for item in items:
        first = next(it for it in items if equal_json(it["k"], item["k"]))
        assert (first["i"] in positions) and (
            item["i"] == first["i"] or item["i"] not in positions
        ), "the first occurrence is the one kept"


@SETTINGS
@given(st.lists(st.fixed_dictionaries({}, optional={"a": scalars, "b": scalars}), max_size=20))
def test_remove_duplicates_of_the_whole_json(values: list[dict[str, Any]]) -> None:
    out = run("remove_duplicates", {}, values).json()

    def same(x: dict[str, Any], y: dict[str, Any]) -> bool:
        return x.keys() == y.keys() and all(equal_json(x[k], y[k]) for k in x)

    kept: list[dict[str, Any]] = []
    for value in values:
        if not any(same(value, k) for k in kept):
            kept.append(value)
    assert out == kept


@SETTINGS
@given(st.lists(st.tuples(small_values, st.integers(-100, 100)), max_size=30))
def test_summarize_counts_add_up_and_groups_keep_first_appearance(
    rows: list[tuple[Any, int]],
) -> None:
    items = [{"v": v} if g is MISSING else {"g": g, "v": v} for g, v in rows]
    out = run(
        "summarize",
        {"group_by": ["g"], "aggregations": [{"op": "count"}, {"field": "v", "op": "sum"}]},
        items,
    ).json()
    assert sum(group["count"] for group in out) == len(items)
    assert sum(group["sum_v"] for group in out) == sum(v for _, v in rows)
    first_seen: list[Any] = []
    for g, _ in rows:
        if g not in first_seen:
            first_seen.append(g)
    assert [group.get("g", MISSING) for group in out] == first_seen
    for group in out:
        g = group.get("g", MISSING)
        assert group["count"] == sum(1 for h, _ in rows if h == g)
        assert group["sum_v"] == sum(v for h, v in rows if h == g)
