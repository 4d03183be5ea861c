"""``/api/v1/workflows``: create, read, update, delete, list, versions, diff, restore, run.

Workflow documents are sent as the body itself, JSON (``application/json``, the default) or YAML
(``application/yaml``), and validated before anything is stored: an invalid one is refused with
422 and every problem listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import yaml
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import Parameter

from flowlite import store
from flowlite.activation import change_workflow
from flowlite.api_executions import present_record
from flowlite.errors import NotFound
from flowlite.execution_store import load_record
from flowlite.record import Mode, record_to_dict
from flowlite.sdk import as_items
from flowlite.state import ServerState
from flowlite.store import (
    BadInput,
    UnsupportedMediaType,
    VersionDetail,
    VersionSummary,
    WorkflowDetail,
    WorkflowPage,
)

__all__ = ["RunRequest", "WorkflowController", "read_document"]

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


@dataclass
class _DocumentBody(Operation):
    """The OpenAPI operation of an endpoint whose body is a workflow document."""

    def __post_init__(self) -> None:
        document = Schema(
            type=OpenAPIType.OBJECT,
            required=["name", "nodes"],
            properties={
                "name": Schema(type=OpenAPIType.STRING),
                "description": Schema(type=OpenAPIType.STRING),
                "nodes": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
                "connections": Schema(
                    type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)
                ),
                "settings": Schema(type=OpenAPIType.OBJECT),
                "pinned": Schema(type=OpenAPIType.OBJECT),
                "tags": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING)),
            },
            description="A workflow document (WORKFLOW.md section 1).",
        )
        self.request_body = RequestBody(
            content={
                "application/json": OpenAPIMediaType(schema=document),
                "application/yaml": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
            required=True,
        )


async def read_document(request: Request[Any, Any, Any]) -> Any:
    """The workflow document in a request body, parsed from JSON or YAML."""
    body = await request.body()
    if not body.strip():
        raise BadInput("the request body is empty: send a workflow document (JSON or YAML)")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in _YAML_TYPES:
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise BadInput(f"the body is not valid YAML{where}") from None
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"a workflow is sent as application/json or application/yaml, not {content_type!r}"
        )
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None


class RunRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A manual run: the trigger's items (an object is one item, a list several) and where to start."""

    items: list[dict[str, Any]] | dict[str, Any] | None = None
    start: str | None = None


class RunStarted(msgspec.Struct):
    id: str
    status: str
    url: str


class ActiveChange(msgspec.Struct, forbid_unknown_fields=True):
    active: bool


class VersionDiff(msgspec.Struct):
    workflow_id: str
    from_version: int
    to_version: int
    diff: str


Limit = Annotated[int, Parameter(ge=1, le=500, description="Items per page (1-500).")]
Offset = Annotated[int, Parameter(ge=0, description="Items to skip.")]
VersionNumber = Annotated[int, Parameter(ge=1, le=2**31 - 1)]


class WorkflowController(Controller):
    path = "/api/v1/workflows"
    tags = ["workflows"]

    @get("/")
    async def list_workflows(
        self,
        flowlite: ServerState,
        q: Annotated[str | None, Parameter(description="Search in names.")] = None,
        active: bool | None = None,
        sort: store.SortKey = "-updated_at",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> WorkflowPage:
        """List workflows, newest change first unless ``sort`` says otherwise."""
        return await store.list_workflows(
            flowlite.db, q=q, active=active, sort=sort, limit=limit, offset=offset
        )

    @post("/", operation_class=_DocumentBody, status_code=201)
    async def create_workflow(
        self, flowlite: ServerState, request: Request[Any, Any, Any]
    ) -> WorkflowDetail:
        """Create a workflow from a document (version 1)."""
        document = await read_document(request)
        return await store.create_workflow(flowlite.db, document, flowlite.registry)

    @get("/{workflow_id:str}")
    async def get_workflow(self, flowlite: ServerState, workflow_id: str) -> WorkflowDetail:
        return await store.get_workflow(flowlite.db, workflow_id)

    @put("/{workflow_id:str}", operation_class=_DocumentBody)
    async def update_workflow(
        self, flowlite: ServerState, workflow_id: str, request: Request[Any, Any, Any]
    ) -> WorkflowDetail:
        """Save a new version of the workflow."""
        document = await read_document(request)
        return await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.update_workflow(flowlite.db, workflow_id, document, flowlite.registry),
            document=document,
        )

    @patch("/{workflow_id:str}")
    async def set_active(
        self, flowlite: ServerState, workflow_id: str, data: ActiveChange
    ) -> WorkflowDetail:
        """Activate or deactivate the workflow (activating registers its triggers; 409 when a
        webhook path is taken by another active workflow)."""
        return await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.set_active(flowlite.db, workflow_id, data.active),
            active=data.active,
        )

    @delete("/{workflow_id:str}")
    async def delete_workflow(self, flowlite: ServerState, workflow_id: str) -> None:
        """Delete the workflow and its versions; its executions stay until pruned."""
        await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.delete_workflow(flowlite.db, workflow_id),
            active=False,
        )

    @get("/{workflow_id:str}/versions")
    async def list_versions(self, flowlite: ServerState, workflow_id: str) -> list[VersionSummary]:
        return await store.list_versions(flowlite.db, workflow_id)

    @get("/{workflow_id:str}/versions/diff")
    async def diff_versions(
        self,
        flowlite: ServerState,
        workflow_id: str,
        from_version: Annotated[int, Parameter(query="from", ge=1, le=2**31 - 1)],
        to_version: Annotated[int, Parameter(query="to", ge=1, le=2**31 - 1)],
    ) -> VersionDiff:
        """A unified diff between two versions (documents as indented JSON)."""
        diff = await store.diff_versions(flowlite.db, workflow_id, from_version, to_version)
        return VersionDiff(workflow_id, from_version, to_version, diff)

    @get("/{workflow_id:str}/versions/{number:int}")
    async def get_version(
        self, flowlite: ServerState, workflow_id: str, number: VersionNumber
    ) -> VersionDetail:
        return await store.get_version(flowlite.db, workflow_id, number)

    @post("/{workflow_id:str}/versions/{number:int}/restore", status_code=201)
    async def restore_version(
        self, flowlite: ServerState, workflow_id: str, number: VersionNumber
    ) -> WorkflowDetail:
        """Save an old version's document as the newest version."""
        old = await store.get_version(flowlite.db, workflow_id, number)
        return await change_workflow(
            flowlite.triggers,
            workflow_id,
            lambda: store.restore_version(flowlite.db, workflow_id, number, flowlite.registry),
            document=old.document,
        )

    @post("/{workflow_id:str}/run", status_code=202)
    async def run_workflow(
        self,
        flowlite: ServerState,
        workflow_id: str,
        data: RunRequest | None = None,
        wait: Annotated[
            bool, Parameter(description="Wait for the end and return the record.")
        ] = False,
    ) -> Response[Any]:
        """Run the workflow's current version (mode ``manual``, pinned data used)."""
        version, active, workflow = await flowlite.runner.current(workflow_id)
        request = data or RunRequest()
        execution = flowlite.runner.start(
            workflow_id,
            version,
            {},
            mode=Mode.MANUAL,
            items=as_items(request.items) if request.items is not None else None,
            start=request.start,
            active=active,
            workflow=workflow,
        )
        if wait:
            record = await flowlite.runner.wait(execution.id)
            if record is not None:
                try:
                    _, document = await load_record(flowlite.db, execution.id)
                except NotFound:  # the workflow keeps no executions of this kind
                    document = record_to_dict(record)
                return Response(present_record(flowlite, document), status_code=200)
        url = f"/api/v1/executions/{execution.id}"
        return Response(RunStarted(execution.id, "running", url), status_code=202)
