"""The workflow and execution store, on SQLite and on Postgres."""

from __future__ import annotations

import asyncio
import copy

import pytest

from flowlite.db import Database
from flowlite.errors import NotFound, WorkflowInvalid
from flowlite.execution_store import (
    CRASH_MESSAGE,
    decode_blob,
    delete_executions,
    encode_blob,
    get_summary,
    list_executions,
    load_inputs,
    load_record,
    prune_batch,
    recover_crashed,
)
from flowlite.registry import Registry
from flowlite.store import (
    Conflict,
    create_workflow,
    delete_workflow,
    diff_versions,
    find_workflow,
    get_version,
    get_workflow,
    import_workflow,
    is_id,
    list_versions,
    list_workflows,
    new_id,
    restore_version,
    set_active,
    update_workflow,
)
from flowlite.writer import ExecutionWriter
from tests.server.conftest import LINEAR

REGISTRY = Registry.default()


def doc(name: str, tag: str = "x") -> dict[str, object]:
    document = copy.deepcopy(LINEAR)
    document["name"] = name
    document["nodes"][1]["parameters"] = {"fields": {"tag": tag}}  # type: ignore[index]
    return document


def test_ids_are_time_sortable_and_unique() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(is_id(i) for i in ids)
    assert ids[0][:8] <= ids[-1][:8]  # the millisecond prefix never goes back


async def test_workflow_versions(db: Database) -> None:
    created = await create_workflow(db, doc("Orders"), REGISTRY)
    assert created.version == 1 and not created.active
    updated = await update_workflow(db, created.id, doc("Orders v2", tag="y"), REGISTRY)
    assert updated.version == 2 and updated.name == "Orders v2"
    assert (await get_workflow(db, created.id)).document == doc("Orders v2", tag="y")
    versions = await list_versions(db, created.id)
    assert [(v.number, v.name, v.current) for v in versions] == [
        (2, "Orders v2", True),
        (1, "Orders", False),
    ]
    assert (await get_version(db, created.id, 1)).document == doc("Orders")
    diff = await diff_versions(db, created.id, 1, 2)
    assert '-  "name": "Orders",' in diff and '+  "name": "Orders v2",' in diff
    assert '+          "tag": "y"' in diff
    restored = await restore_version(db, created.id, 1, REGISTRY)
    assert restored.version == 3 and restored.document == doc("Orders")
    assert (await get_version(db, created.id, 2)).document == doc("Orders v2", tag="y")
    with pytest.raises(NotFound, match="no version 9"):
        await get_version(db, created.id, 9)


async def test_invalid_workflow_is_not_stored(db: Database) -> None:
    bad = {"name": "", "nodes": [{"name": "a", "type": "nope"}], "colour": 1}
    with pytest.raises(WorkflowInvalid) as caught:
        await create_workflow(db, bad, REGISTRY)
    locations = {p.location for p in caught.value.problems}
    assert "colour" in locations
    assert (await list_workflows(db)).total == 0


async def test_active_delete_and_find(db: Database) -> None:
    created = await create_workflow(db, doc("Find me"), REGISTRY)
    assert (await set_active(db, created.id, True)).active
    found, version = await find_workflow(db, "Find me")
    assert found.id == created.id and version == 1
    assert (await find_workflow(db, created.id))[0].name == "Find me"
    await delete_workflow(db, created.id)
    with pytest.raises(NotFound):
        await get_workflow(db, created.id)
    with pytest.raises(NotFound):
        await find_workflow(db, "Find me")


async def test_list_search_filter_sort_paginate(db: Database) -> None:
    for name in ["beta", "Alpha", "gamma", "alphabet"]:
        created = await create_workflow(db, doc(name), REGISTRY)
        if name.lower().startswith("alpha"):
            await set_active(db, created.id, True)
    page = await list_workflows(db, q="ALPHA", sort="name")
    assert [w.name for w in page.data] == ["Alpha", "alphabet"] and page.total == 2
    assert [w.name for w in (await list_workflows(db, active=False, sort="-name")).data] == [
        "gamma",
        "beta",
    ]
    first = await list_workflows(db, sort="created_at", limit=3)
    second = await list_workflows(db, sort="created_at", limit=3, offset=3)
    assert first.total == 4 and len(first.data) == 3 and len(second.data) == 1
    assert (await list_workflows(db, q="%")).total == 0  # LIKE wildcards are escaped


async def test_import_creates_updates_or_leaves_unchanged(db: Database) -> None:
    workflow_id = new_id()
    detail, outcome = await import_workflow(db, doc("I"), REGISTRY, workflow_id=workflow_id)
    assert outcome == "created" and detail.id == workflow_id
    assert (await import_workflow(db, doc("I"), REGISTRY, workflow_id=workflow_id))[
        1
    ] == "unchanged"
    detail, outcome = await import_workflow(db, doc("I", "z"), REGISTRY, workflow_id=workflow_id)
    assert outcome == "updated" and detail.version == 2
    with pytest.raises(Conflict):
        await create_workflow(db, doc("I"), REGISTRY, workflow_id=workflow_id)


def _row(
    execution_id: str,
    *,
    workflow_id: str = "w",
    started: str = "2026-01-01T00:00:00.000Z",
    mode: str = "manual",
) -> dict[str, object]:
    return {
        "id": execution_id,
        "workflow_id": workflow_id,
        "workflow_name": "W",
        "workflow_version": 1,
        "mode": mode,
        "status": "running",
        "started_at": started,
        "finished_at": None,
        "error_message": None,
        "error_node": None,
        "retry_of": None,
    }


def _finish(status: str = "success", error: str | None = None) -> dict[str, object]:
    return {
        "status": status,
        "finished_at": "2026-01-01T00:00:01.000Z",
        "error_message": error,
        "error_node": "N" if error else None,
    }


async def test_writer_batches_and_merges(db: Database) -> None:
    writer = ExecutionWriter(db)
    writer.start()
    ids = [new_id() for _ in range(300)]
    futures = []
    for i, execution_id in enumerate(ids):
        writer.insert(
            _row(execution_id, mode="manual" if i % 2 else "webhook"),
            encode_blob({"items": [{"json": {"i": i}}], "start": None}),
        )
        record = {"id": execution_id, "status": "success", "nodes": {}}
        status = "error" if i % 3 == 0 else "success"
        futures.append(
            writer.finish(
                execution_id,
                _finish(status, "boom" if status == "error" else None),
                encode_blob(record),
                False,
            )
        )
    await asyncio.gather(*futures)
    assert writer.commits <= 3  # 300 executions, merged inserts, few transactions
    summary = await get_summary(db, ids[3])
    assert summary.status == "error" and summary.error == "boom" and summary.error_node == "N"
    _, record = await load_record(db, ids[4])
    assert record == {"id": ids[4], "status": "success", "nodes": {}}
    assert (await load_inputs(db, ids[5]))["items"] == [{"json": {"i": 5}}]
    # an execution finished after its insert was committed: an update
    late = new_id()
    writer.insert(_row(late), None)
    await writer.flush()
    assert (await get_summary(db, late)).status == "running"
    await writer.finish(late, _finish(), encode_blob({"id": late}), False)
    assert (await get_summary(db, late)).status == "success"
    # discarded before and after being written
    gone = new_id()
    writer.insert(_row(gone), None)
    await writer.discard(gone)
    await writer.discard(late)
    for execution_id in (gone, late):
        with pytest.raises(NotFound):
            await get_summary(db, execution_id)
    await writer.close()


async def test_writer_isolates_a_bad_write(db: Database) -> None:
    writer = ExecutionWriter(db)
    writer.start()
    good = new_id()
    writer.insert(_row(good), None)
    await writer.flush()
    duplicate = writer.finish(new_id(), _finish(), b"x", False)  # update of nothing: harmless
    writer.insert(_row(good), None)  # duplicate primary key: this one fails
    other = new_id()
    writer.insert(_row(other), None)
    await writer.flush()
    await duplicate
    assert (await get_summary(db, other)).status == "running"
    await writer.close()


async def test_listing_with_filters_and_cursor(db: Database) -> None:
    writer = ExecutionWriter(db)
    writer.start()
    ids = []
    for i in range(25):
        execution_id = new_id()
        ids.append(execution_id)
        started = f"2026-01-{i + 1:02d}T00:00:00.000Z"
        writer.insert(
            _row(
                execution_id,
                workflow_id="a" if i % 2 else "b",
                started=started,
                mode="webhook" if i < 5 else "manual",
            ),
            None,
        )
        writer.finish(
            execution_id, _finish("error" if i % 5 == 0 else "success"), encode_blob({}), False
        )
        await asyncio.sleep(0.002)  # distinct milliseconds: ids sort by time
    await writer.flush()
    seen = []
    cursor = None
    while True:
        page = await list_executions(db, limit=10, cursor=cursor)
        seen += [e.id for e in page.data]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert {
        e.workflow_id for e in (await list_executions(db, workflow_id="a", limit=100)).data
    } == {"a"}
    errors = (await list_executions(db, status=["error"], limit=100)).data
    assert len(errors) == 5 and all(e.status == "error" for e in errors)
    assert len((await list_executions(db, mode=["webhook"], limit=100)).data) == 5
    window = await list_executions(
        db,
        started_after="2026-01-10T00:00:00.000Z",
        started_before="2026-01-12T00:00:00.000Z",
        limit=100,
    )
    assert [e.started_at[:10] for e in window.data] == ["2026-01-11", "2026-01-10"]
    await delete_executions(db, ids[:5])
    assert len((await list_executions(db, limit=100)).data) == 20
    await writer.close()


async def test_prune_by_age_and_count_and_recover(db: Database) -> None:
    writer = ExecutionWriter(db)
    writer.start()
    ids = []
    for i in range(30):
        execution_id = new_id()
        ids.append(execution_id)
        writer.insert(_row(execution_id, started=f"2026-01-{i + 1:02d}T00:00:00.000Z"), None)
        if i != 0:  # the oldest is still running: never pruned
            writer.finish(execution_id, _finish(), encode_blob({}), False)
        await asyncio.sleep(0.002)
    await writer.flush()
    deleted = await prune_batch(db, older_than="2026-01-06T00:00:00.000Z", keep=0, batch=3)
    assert deleted == ids[1:4]  # oldest first, bounded by the batch
    deleted = await prune_batch(db, older_than=None, keep=20, batch=100)
    remaining = [e.id for e in (await list_executions(db, limit=100)).data]
    assert (
        ids[0] in remaining and len(remaining) == 21 and remaining[:20] == list(reversed(ids[10:]))
    )
    assert set(deleted) == set(ids[4:10])
    crashed = await recover_crashed(db)
    assert crashed == [ids[0]]
    summary = await get_summary(db, ids[0])
    assert summary.status == "crashed" and summary.error == CRASH_MESSAGE and summary.finished_at
    _, record = await load_record(db, ids[0])
    assert record["status"] == "crashed" and record["error"]["message"] == CRASH_MESSAGE
    await writer.close()


def test_blobs_round_trip() -> None:
    value = {"a": [1, 2, {"b": "ü" * 1000}]}
    blob = encode_blob(value)
    assert len(blob) < 200 and decode_blob(blob) == value
