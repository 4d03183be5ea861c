"""``/api/v1/executions``: list, detail, output pages, delete, retry, cancel, live events.

A detail returns the execution record (WORKFLOW.md section 4) with at most ``items`` items per
node output (default: the ``output_page_items`` setting); a longer output carries
``truncated: {output: {total, next}}`` on its run, ``next`` being the URL of the following page.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from flowlite.errors import NotFound
from flowlite.events import ALL_EXECUTIONS
from flowlite.execution_store import (
    ExecutionPage,
    delete_executions,
    get_summary,
    list_executions,
    load_record,
    normalize_time,
)
from flowlite.record import TERMINAL, Mode, Status
from flowlite.retry import retry_execution
from flowlite.runner import record_document
from flowlite.spill import SpillRef, read_items, remove_execution_files
from flowlite.state import ServerState
from flowlite.store import Conflict

__all__ = ["ExecutionController", "present_record"]

PING_SECONDS = 15.0


class OutputPage(msgspec.Struct):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int
    next: str | None


class RetryRequest(msgspec.Struct, forbid_unknown_fields=True):
    start_from: Literal["start", "failed_node"] = msgspec.field(default="start", name="from")


class Accepted(msgspec.Struct):
    id: str
    status: str
    url: str


def _output_url(
    execution_id: str, node: str, index: int, output: str, offset: int, limit: int
) -> str:
    return (
        f"/api/v1/executions/{execution_id}/nodes/{quote(node, safe='')}/runs/{index}"
        f"/outputs/{quote(output, safe='')}?offset={offset}&limit={limit}"
    )


def present_record(
    state: ServerState, record: dict[str, Any], limit: int | None = None
) -> dict[str, Any]:
    """The record with every node output cut to ``limit`` items and links to the rest."""
    limit = state.config.output_page_items if limit is None else limit
    directory = state.config.executions_dir / str(record.get("id"))
    for node, entry in record.get("nodes", {}).items():
        for run in entry.get("runs", []):
            spilled = run.pop("spilled", None) or {}
            outputs = run.get("outputs", {})
            truncated: dict[str, Any] = {}
            for output in list(outputs):
                ref = SpillRef(**spilled[output]) if output in spilled else None
                total = ref.items if ref is not None else len(outputs[output])
                if ref is not None:
                    outputs[output] = read_items(directory, ref, 0, limit)
                elif total > limit:
                    outputs[output] = outputs[output][:limit]
                if total > limit:
                    next_url = _output_url(record["id"], node, run["index"], output, limit, limit)
                    truncated[output] = {"total": total, "next": next_url}
            if truncated:
                run["truncated"] = truncated
    for key in ("response", "cancel_reason"):
        if record.get(key) is None:
            record.pop(key, None)
    return record


async def _record(state: ServerState, execution_id: str) -> dict[str, Any]:
    live = state.runner.live(execution_id)
    if live is not None:
        document: dict[str, Any] = msgspec.to_builtins(record_document(*live))
        return document
    _, record = await load_record(state.db, execution_id)
    return record


def _sse(event: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=json.dumps(event, ensure_ascii=False), event=event["event"])


class ExecutionController(Controller):
    path = "/api/v1/executions"
    tags = ["executions"]

    @get("/")
    async def list_executions(
        self,
        flowlite: ServerState,
        workflow_id: str | None = None,
        status: Annotated[
            list[Status] | None, Parameter(description="One or more statuses.")
        ] = None,
        mode: Annotated[list[Mode] | None, Parameter(description="One or more modes.")] = None,
        started_after: Annotated[str | None, Parameter(description="ISO 8601 time.")] = None,
        started_before: Annotated[str | None, Parameter(description="ISO 8601 time.")] = None,
        cursor: Annotated[
            str | None, Parameter(description="`next_cursor` of the previous page.")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> ExecutionPage:
        """Execution summaries, newest first, with cursor pagination."""
        return await list_executions(
            flowlite.db,
            workflow_id=workflow_id,
            status=[str(s) for s in status or ()],
            mode=[str(m) for m in mode or ()],
            started_after=normalize_time(started_after, "started_after") if started_after else None,
            started_before=normalize_time(started_before, "started_before")
            if started_before
            else None,
            cursor=cursor,
            limit=limit,
        )

    @get("/events")
    async def all_events(self, flowlite: ServerState) -> ServerSentEvent:
        """Server-sent events of every execution: started, node started/finished, finished."""
        subscription = flowlite.hub.subscribe(ALL_EXECUTIONS)

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            try:
                yield ServerSentEventMessage(comment="connected", data=None)
                while True:
                    event = await subscription.get(PING_SECONDS)
                    yield (
                        ServerSentEventMessage(comment="ping", data=None)
                        if event is None
                        else _sse(event)
                    )
            finally:
                subscription.close()

        return ServerSentEvent(stream())

    @get("/{execution_id:str}")
    async def get_execution(
        self,
        flowlite: ServerState,
        execution_id: str,
        items: Annotated[
            int | None, Parameter(ge=0, le=10000, description="Items per output.")
        ] = None,
    ) -> dict[str, Any]:
        """The execution record; long node outputs are cut and linked (``truncated``)."""
        return present_record(flowlite, await _record(flowlite, execution_id), items)

    @get("/{execution_id:str}/nodes/{node:str}/runs/{index:int}/outputs/{output:str}")
    async def get_output(
        self,
        flowlite: ServerState,
        execution_id: str,
        node: str,
        index: Annotated[int, Parameter(ge=0, le=2**31 - 1)],
        output: str,
        offset: Annotated[int, Parameter(ge=0)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=10000)] = 100,
    ) -> OutputPage:
        """A page of one node run's output items."""
        record = await _record(flowlite, execution_id)
        runs = record.get("nodes", {}).get(node, {}).get("runs", [])
        if index >= len(runs):
            raise NotFound(f"execution {execution_id!r} has no run {index} of node {node!r}")
        run = runs[index]
        spilled = (run.get("spilled") or {}).get(output)
        if spilled is None and output not in run.get("outputs", {}):
            raise NotFound(f"run {index} of node {node!r} has no output {output!r}")
        if spilled is not None:
            ref = SpillRef(**spilled)
            total = ref.items
            page = read_items(flowlite.config.executions_dir / execution_id, ref, offset, limit)
        else:
            items = run["outputs"][output]
            total = len(items)
            page = items[offset : offset + limit]
        following = offset + limit
        next_url = (
            _output_url(execution_id, node, index, output, following, limit)
            if following < total
            else None
        )
        return OutputPage(page, total, offset, limit, next_url)

    @delete("/{execution_id:str}")
    async def delete_execution(self, flowlite: ServerState, execution_id: str) -> None:
        """Delete a finished execution and its data."""
        if flowlite.runner.live(execution_id) is not None:
            raise Conflict(f"execution {execution_id!r} is running: cancel it first")
        await get_summary(flowlite.db, execution_id)
        await delete_executions(flowlite.db, [execution_id])
        remove_execution_files(flowlite.config.executions_dir / execution_id)

    @post("/{execution_id:str}/retry", status_code=202)
    async def retry(
        self,
        flowlite: ServerState,
        execution_id: str,
        data: RetryRequest | None = None,
        wait: bool = False,
    ) -> Response[Any]:
        """Run a finished execution again: ``{"from": "start"}`` or ``{"from": "failed_node"}``."""
        request = data or RetryRequest()
        execution = await retry_execution(flowlite, execution_id, request.start_from)
        if wait:
            await flowlite.runner.wait(execution.id)
            record = present_record(flowlite, await _record(flowlite, execution.id))
            return Response(record, status_code=200)
        url = f"/api/v1/executions/{execution.id}"
        return Response(Accepted(execution.id, "running", url), status_code=202)

    @post("/{execution_id:str}/cancel", status_code=202)
    async def cancel(self, flowlite: ServerState, execution_id: str) -> Accepted:
        """Cancel a running execution (its status becomes ``canceled``)."""
        if not flowlite.runner.cancel(execution_id):
            live = flowlite.runner.live(execution_id)
            if live is not None:
                status = str(live[0].status)
            else:
                status = (await get_summary(flowlite.db, execution_id)).status
            raise Conflict(f"execution {execution_id!r} is not running ({status})")
        return Accepted(execution_id, "canceling", f"/api/v1/executions/{execution_id}")

    @get("/{execution_id:str}/events")
    async def events(self, flowlite: ServerState, execution_id: str) -> ServerSentEvent:
        """Server-sent events of one execution until it ends (at once if it has ended)."""
        subscription = flowlite.hub.subscribe(execution_id)  # before looking: no event is lost
        try:
            first = await _final_event(flowlite, execution_id)
        except NotFound:
            subscription.close()
            raise

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            try:
                if first is not None:
                    yield _sse(first)
                    return
                yield ServerSentEventMessage(comment="connected", data=None)
                while True:
                    event = await subscription.get(PING_SECONDS)
                    if event is None:
                        final = await _final_event(flowlite, execution_id)
                        if final is not None:  # ended in another process (or it was missed)
                            yield _sse(final)
                            return
                        yield ServerSentEventMessage(comment="ping", data=None)
                        continue
                    yield _sse(event)
                    if event["event"] == "execution_finished":
                        return
            finally:
                subscription.close()

        return ServerSentEvent(stream())


async def _final_event(state: ServerState, execution_id: str) -> dict[str, Any] | None:
    """The ``execution_finished`` event of an execution that has ended, else ``None``."""
    live = state.runner.live(execution_id)
    if live is not None:
        record = live[0]
        if record.status not in TERMINAL:
            return None
        error = record.error
        return {
            "event": "execution_finished",
            "id": execution_id,
            "status": str(record.status),
            "finished_at": record.finished_at,
            "error_message": error.message if error else record.cancel_reason,
            "error_node": error.node if error else None,
        }
    summary = await get_summary(state.db, execution_id)  # NotFound: a 404
    if summary.status not in TERMINAL:
        return None
    return {"event": "execution_finished", **msgspec.to_builtins(summary)}
