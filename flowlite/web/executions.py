"""The executions pages: the list (filters, live updates) and one execution on the canvas, with
retry, cancel and delete."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from litestar import Controller, Response, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template

from flowlite import store
from flowlite.api_executions import present_record
from flowlite.errors import NotFound
from flowlite.execution_store import delete_executions, get_summary, list_executions
from flowlite.record import Mode, Status
from flowlite.retry import retry_execution
from flowlite.spill import remove_execution_files
from flowlite.state import ServerState
from flowlite.store import Conflict
from flowlite.web.common import html_exception_handlers, page_or_fragment
from flowlite.web.editor import load_execution_record, node_catalog

__all__ = ["ExecutionPages", "document_of_run", "statuses_of"]

PAGE_SIZE = 50


async def document_of_run(state: ServerState, record: dict[str, Any]) -> dict[str, Any]:
    """The workflow version an execution ran, with any node it recorded that the version lacks
    (a draft run's new nodes); without the version, just the recorded nodes."""
    workflow = record.get("workflow") or {}
    document: dict[str, Any] = {"name": workflow.get("name", ""), "nodes": [], "connections": []}
    if workflow.get("id") and workflow.get("version"):
        try:
            version = await store.get_version(state.db, workflow["id"], workflow["version"])
            document = version.document
        except NotFound:
            pass
    known = {node.get("name") for node in document.get("nodes", [])}
    extra = [
        {"name": name, "type": "noop"} for name in record.get("nodes", {}) if name not in known
    ]
    if extra:
        document = {**document, "nodes": [*document.get("nodes", []), *extra]}
    return document


def statuses_of(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per node: the last run's status and error, and the items of each output over its runs
    (what the canvas shows; editor.js computes the same from a record it fetches)."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in record.get("nodes", {}).items():
        runs = entry.get("runs") or []
        if not runs:
            continue
        items: dict[str, int] = {}
        for run in runs:
            cut = run.get("truncated") or {}
            for output, found in (run.get("outputs") or {}).items():
                count = cut[output]["total"] if output in cut else len(found)
                items[output] = items.get(output, 0) + count
        error = runs[-1].get("error")
        out[name] = {
            "status": runs[-1].get("status"),
            "items": items,
            "error": error.get("message") if error else None,
        }
    return out


class ExecutionPages(Controller):
    path = "/executions"
    include_in_schema = False
    request_class = HTMXRequest
    exception_handlers = html_exception_handlers()

    @get("/")
    async def list_page(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        workflow_id: str | None = None,
        status: str | None = None,
        mode: str | None = None,
        cursor: str | None = None,
    ) -> Template:
        page = await list_executions(
            flowlite.db,
            workflow_id=workflow_id or None,
            status=[status] if status else [],
            mode=[mode] if mode else [],
            cursor=cursor or None,
            limit=PAGE_SIZE,
        )
        workflows = await store.list_workflows(flowlite.db, sort="name", limit=500)
        context = {
            "executions": page.data,
            "next_cursor": page.next_cursor,
            "workflow_id": workflow_id or "",
            "status": status or "",
            "mode": mode or "",
            "statuses": [str(s) for s in Status],
            "modes": [str(m) for m in Mode],
            "workflows": workflows.data,
            "nav": "executions",
        }
        return page_or_fragment(request, "executions/list.html", "executions/_rows.html", context)

    @get("/{execution_id:str}")
    async def detail(
        self, request: HTMXRequest, flowlite: ServerState, execution_id: str
    ) -> Template:
        """The execution on the canvas; an htmx request gets its summary bar only."""
        # items are paged in the data panel: here only counts are needed
        record = present_record(flowlite, await load_execution_record(flowlite, execution_id), 0)
        running = flowlite.runner.live(execution_id) is not None and record["status"] in (
            "running",
            "queued",
            "waiting",
        )
        context: dict[str, Any] = {"record": record, "running": running, "nav": "executions"}
        if request.htmx:
            return Template(template_name="executions/_summary.html", context=context)
        document = await document_of_run(flowlite, record)
        statuses = statuses_of(record)
        context.update(
            document=document,
            catalog=node_catalog(flowlite.registry),
            statuses=statuses,
        )
        return Template(template_name="executions/detail.html", context=context)

    @post("/{execution_id:str}/retry")
    async def retry(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        execution_id: str,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Run it again from the start or from the failed node; opens the new execution."""
        failed_node = data.get("from") == "failed_node"
        execution = await retry_execution(
            flowlite, execution_id, "failed_node" if failed_node else "start"
        )
        url = f"/executions/{execution.id}"
        return ClientRedirect(url) if request.htmx else Redirect(url)

    @post("/{execution_id:str}/cancel")
    async def cancel(self, flowlite: ServerState, execution_id: str) -> Template:
        if not flowlite.runner.cancel(execution_id, "canceled in the editor"):
            raise Conflict(f"execution {execution_id!r} is not running")
        record = await load_execution_record(flowlite, execution_id)
        return Template(
            template_name="executions/_summary.html",
            context={"record": record, "running": True},
        )

    @delete("/{execution_id:str}", status_code=200)
    async def delete_execution(
        self, request: HTMXRequest, flowlite: ServerState, execution_id: str
    ) -> Response[Any]:
        """Delete a finished execution; from its own page, go back to the list."""
        if flowlite.runner.live(execution_id) is not None:
            raise Conflict(f"execution {execution_id!r} is running: cancel it first")
        await get_summary(flowlite.db, execution_id)
        await delete_executions(flowlite.db, [execution_id])
        remove_execution_files(flowlite.config.executions_dir / execution_id)
        page = urlparse(request.headers.get("hx-current-url", "")).path
        if page.rstrip("/") == f"/executions/{execution_id}":
            return ClientRedirect("/executions")
        return Response("", media_type="text/html")
