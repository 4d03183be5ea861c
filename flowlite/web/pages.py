"""The workflows pages: the list (search, tags, active toggle, last run), import, export,
duplicate, delete, and a workflow's version history (diff, restore)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from litestar import Controller, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template
from sqlalchemy import func, select

from flowlite import store
from flowlite.activation import change_workflow
from flowlite.errors import WorkflowInvalid
from flowlite.model import parse_document
from flowlite.state import ServerState
from flowlite.tables import executions, workflow_versions, workflows
from flowlite.web.common import html_exception_handlers, page_or_fragment
from flowlite.web.editor import editor_page

__all__ = ["ImportForm", "WorkflowPages", "WorkflowRow", "home"]

PAGE_SIZE = 50
#: the list is filtered by tag in Python, over at most this many workflows
TAG_SCAN_LIMIT = 500


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/workflows")


@dataclass
class WorkflowRow:
    id: str
    name: str
    active: bool
    version: int
    updated_at: str
    tags: list[str]
    last_status: str | None
    last_execution: str | None


async def _tags_and_last_runs(
    state: ServerState, ids: list[str]
) -> tuple[dict[str, list[str]], dict[str, tuple[str, str]]]:
    """Tags of the current versions and the latest execution of each workflow, in two queries."""
    if not ids:
        return {}, {}
    async with state.db.read() as connection:
        documents = await connection.execute(
            select(workflow_versions.c.workflow_id, workflow_versions.c.document)
            .join(
                workflows,
                (workflows.c.id == workflow_versions.c.workflow_id)
                & (workflows.c.version == workflow_versions.c.number),
            )
            .where(workflows.c.id.in_(ids))
        )
        tags = {}
        for workflow_id, text in documents:
            found = json.loads(text).get("tags") or []
            tags[workflow_id] = [str(tag) for tag in found if isinstance(tag, str)]
        latest = (
            select(executions.c.workflow_id, func.max(executions.c.id).label("last"))
            .where(executions.c.workflow_id.in_(ids))
            .group_by(executions.c.workflow_id)
            .subquery()
        )
        rows = await connection.execute(
            select(executions.c.workflow_id, executions.c.id, executions.c.status).join(
                latest, executions.c.id == latest.c.last
            )
        )
        last = {workflow_id: (execution_id, status) for workflow_id, execution_id, status in rows}
    return tags, last


async def workflow_rows(
    state: ServerState, q: str | None, tag: str | None, active: bool | None, offset: int = 0
) -> tuple[list[WorkflowRow], int]:
    """A page of the list: rows and the total count (``tag`` filters after the name search)."""
    limit = TAG_SCAN_LIMIT if tag else PAGE_SIZE
    page = await store.list_workflows(state.db, q=q, active=active, limit=limit, offset=offset)
    tags, last = await _tags_and_last_runs(state, [w.id for w in page.data])
    rows = [
        WorkflowRow(
            w.id,
            w.name,
            w.active,
            w.version,
            w.updated_at,
            tags.get(w.id, []),
            last[w.id][1] if w.id in last else None,
            last[w.id][0] if w.id in last else None,
        )
        for w in page.data
    ]
    if tag:
        rows = [row for row in rows if tag in row.tags]
        return rows[:PAGE_SIZE], len(rows)
    return rows, page.total


def _active(text: str | None) -> bool | None:
    return {"true": True, "false": False}.get(text or "")


@dataclass
class ImportForm:
    text: str = ""
    file: UploadFile | None = None


def _copy_name(name: str) -> str:
    return f"{name} (copy)"


class WorkflowPages(Controller):
    path = "/workflows"
    include_in_schema = False
    request_class = HTMXRequest
    exception_handlers = html_exception_handlers()

    async def _list(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        q: str | None,
        tag: str | None,
        active: str | None,
        offset: int = 0,
    ) -> Template:
        rows, total = await workflow_rows(flowlite, q, tag, _active(active), offset)
        context = {
            "rows": rows,
            "total": total,
            "q": q or "",
            "tag": tag or "",
            "active": active or "",
            "offset": offset,
            "page_size": PAGE_SIZE,
            "nav": "workflows",
        }
        return page_or_fragment(request, "workflows/list.html", "workflows/_rows.html", context)

    @get("/")
    async def list_page(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        q: str | None = None,
        tag: str | None = None,
        active: str | None = None,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> Template:
        return await self._list(request, flowlite, q, tag, active, offset)

    @get("/new")
    async def new_workflow(self, flowlite: ServerState) -> Template:
        """An empty canvas; the first save creates the workflow."""
        return editor_page(flowlite, None, {"name": "My workflow", "nodes": [], "connections": []})

    @get("/{workflow_id:str}")
    async def edit_workflow(self, flowlite: ServerState, workflow_id: str) -> Template:
        """The workflow on the canvas."""
        detail = await store.get_workflow(flowlite.db, workflow_id)
        return editor_page(flowlite, detail, detail.document)

    @post("/{workflow_id:str}/duplicate")
    async def duplicate(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        workflow_id: str,
        q: str | None = None,
        tag: str | None = None,
        active: str | None = None,
    ) -> Template:
        detail = await store.get_workflow(flowlite.db, workflow_id)
        document = copy.deepcopy(detail.document)
        document["name"] = _copy_name(detail.name)
        await store.create_workflow(flowlite.db, document, flowlite.registry)
        return await self._list(request, flowlite, q, tag, active)

    @delete("/{workflow_id:str}", status_code=200)
    async def delete_workflow(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        workflow_id: str,
        q: str | None = None,
        tag: str | None = None,
        active: str | None = None,
    ) -> Template:
        await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.delete_workflow(flowlite.db, workflow_id),
            active=False,
        )
        return await self._list(request, flowlite, q, tag, active)

    @post("/{workflow_id:str}/active")
    async def toggle_active(
        self,
        flowlite: ServerState,
        workflow_id: str,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """Activate (``active=true``) or deactivate the workflow; answers its row. Activation
        registers its triggers, and is refused when another active workflow has its webhook."""
        active = data.get("active") == "true"
        detail = await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.set_active(flowlite.db, workflow_id, active),
            active=active,
        )
        tags, last = await _tags_and_last_runs(flowlite, [workflow_id])
        found = last.get(workflow_id)
        row = WorkflowRow(
            detail.id,
            detail.name,
            detail.active,
            detail.version,
            detail.updated_at,
            tags.get(workflow_id, []),
            found[1] if found else None,
            found[0] if found else None,
        )
        return Template(template_name="workflows/_row.html", context={"row": row})

    @get("/import")
    async def import_page(self, request: HTMXRequest) -> Template:
        context = {"text": "", "problems": [], "nav": "workflows"}
        return page_or_fragment(request, "workflows/import.html", "workflows/_import.html", context)

    @post("/import")
    async def import_workflow(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[Any]:
        """Create a workflow from pasted or uploaded JSON or YAML; open it in the editor."""
        text, filename = data.text, ""
        if data.file is not None and data.file.filename:
            text = (await data.file.read()).decode("utf-8", errors="replace")
            filename = data.file.filename
        problems: list[str] = []
        if not text.strip():
            problems.append("paste a workflow or choose a file")
        else:
            try:
                detail = await store.create_workflow(
                    flowlite.db, parse_document(text, filename=filename), flowlite.registry
                )
            except WorkflowInvalid as exc:
                problems = [str(p) for p in exc.problems]
            else:
                url = f"/workflows/{detail.id}"
                return ClientRedirect(url) if request.htmx else Redirect(url)
        context = {"text": data.text, "problems": problems, "nav": "workflows"}
        return page_or_fragment(request, "workflows/import.html", "workflows/_import.html", context)

    @get("/{workflow_id:str}/export")
    async def export(
        self, flowlite: ServerState, workflow_id: str, format: str = "json"
    ) -> Response[str]:
        """The current version's document as a JSON or YAML download."""
        detail = await store.get_workflow(flowlite.db, workflow_id)
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in detail.name).strip("-")
        if format == "yaml":
            body = yaml.safe_dump(detail.document, sort_keys=False, allow_unicode=True)
            media, suffix = "application/yaml", "yaml"
        else:
            body = json.dumps(detail.document, indent=2, ensure_ascii=False) + "\n"
            media, suffix = "application/json", "json"
        return Response(
            body,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{stem or "workflow"}.{suffix}"'
            },
        )

    @get("/{workflow_id:str}/versions")
    async def versions(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        workflow_id: str,
        from_version: Annotated[int | None, Parameter(query="from", ge=1)] = None,
        to_version: Annotated[int | None, Parameter(query="to", ge=1)] = None,
    ) -> Template:
        """The version history; ``from``/``to`` select the diff shown (default: the last two)."""
        detail = await store.get_workflow(flowlite.db, workflow_id)
        versions = await store.list_versions(flowlite.db, workflow_id)
        to_number = to_version or detail.version
        from_number = from_version or max(1, to_number - 1)
        diff = ""
        if from_number != to_number:
            diff = await store.diff_versions(flowlite.db, workflow_id, from_number, to_number)
        context = {
            "workflow": detail,
            "versions": versions,
            "diff_lines": diff.splitlines(),
            "from_version": from_number,
            "to_version": to_number,
            "nav": "workflows",
        }
        return page_or_fragment(request, "workflows/versions.html", "workflows/_diff.html", context)

    @post("/{workflow_id:str}/versions/{number:int}/restore")
    async def restore(
        self, request: HTMXRequest, flowlite: ServerState, workflow_id: str, number: int
    ) -> Response[Any]:
        old = await store.get_version(flowlite.db, workflow_id, number)
        await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.restore_version(flowlite.db, workflow_id, number, flowlite.registry),
            document=old.document,
        )
        url = f"/workflows/{workflow_id}"
        return ClientRedirect(url) if request.htmx else Redirect(url)
