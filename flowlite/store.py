"""The workflow store: workflows and their immutable numbered versions.

Every save validates the document (all problems at once, :class:`~flowlite.errors.WorkflowInvalid`)
and appends a version; the document is kept exactly as given (key order and explicitly written
defaults included), so an import followed by an export gives the same document back.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from typing import Any, Literal

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from flowlite.audit import append as audit
from flowlite.db import Database
from flowlite.errors import NotFound, Problem, UserError, WorkflowInvalid
from flowlite.model import Workflow, workflow_from_dict
from flowlite.record import iso_now
from flowlite.registry import Registry
from flowlite.tables import workflow_versions, workflows
from flowlite.validation import problems_of

__all__ = [
    "BadInput",
    "Conflict",
    "UnsupportedMediaType",
    "VersionDetail",
    "VersionSummary",
    "WorkflowDetail",
    "WorkflowPage",
    "WorkflowSummary",
    "create_workflow",
    "current_version",
    "delete_workflow",
    "diff_versions",
    "find_workflow",
    "get_version",
    "get_workflow",
    "import_workflow",
    "is_id",
    "list_versions",
    "list_workflows",
    "new_id",
    "parse_workflow",
    "restore_version",
    "set_active",
    "update_workflow",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Conflict(UserError):
    """The request conflicts with the current state (e.g. deleting a running execution)."""


class BadInput(UserError):
    """A request's argument is malformed (a bad time, an unknown sort key, ...)."""


class UnsupportedMediaType(BadInput):
    """A request body's content type is not one the endpoint reads."""


def new_id() -> str:
    """A time-sortable id: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_id(text: str) -> bool:
    return len(text) == 26 and all(c in _CROCKFORD for c in text)


class WorkflowSummary(msgspec.Struct):
    id: str
    name: str
    active: bool
    version: int
    created_at: str
    updated_at: str


class WorkflowDetail(msgspec.Struct):
    id: str
    name: str
    active: bool
    version: int
    created_at: str
    updated_at: str
    document: dict[str, Any]


class WorkflowPage(msgspec.Struct):
    data: list[WorkflowSummary]
    total: int
    limit: int
    offset: int


class VersionSummary(msgspec.Struct):
    number: int
    name: str
    created_at: str
    current: bool


class VersionDetail(msgspec.Struct):
    workflow_id: str
    number: int
    created_at: str
    document: dict[str, Any]


def parse_workflow(document: Any, registry: Registry) -> Workflow:
    """The workflow of a document, or :class:`WorkflowInvalid` listing every problem."""
    workflow = workflow_from_dict(document)
    problems = problems_of(workflow, registry)
    if not workflow.name.strip():
        problems.insert(0, Problem("name", "must not be empty"))
    if problems:
        raise WorkflowInvalid(problems)
    return workflow


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def _row(connection: AsyncConnection, workflow_id: str) -> Any:
    row = (await connection.execute(select(workflows).where(workflows.c.id == workflow_id))).first()
    if row is None:
        raise NotFound(f"no workflow with id {workflow_id!r}")
    return row


async def _document(connection: AsyncConnection, workflow_id: str, number: int) -> dict[str, Any]:
    text = (
        await connection.execute(
            select(workflow_versions.c.document).where(
                workflow_versions.c.workflow_id == workflow_id,
                workflow_versions.c.number == number,
            )
        )
    ).scalar()
    if text is None:
        raise NotFound(f"workflow {workflow_id!r} has no version {number}")
    document: dict[str, Any] = json.loads(text)
    return document


def _detail(row: Any, document: dict[str, Any]) -> WorkflowDetail:
    return WorkflowDetail(
        row.id, row.name, row.active, row.version, row.created_at, row.updated_at, document
    )


async def create_workflow(
    db: Database,
    document: Any,
    registry: Registry,
    *,
    workflow_id: str | None = None,
    active: bool = False,
) -> WorkflowDetail:
    """Validate and store a new workflow as version 1."""
    workflow = parse_workflow(document, registry)
    now = iso_now()
    row: dict[str, Any] = {
        "id": workflow_id or new_id(),
        "name": workflow.name,
        "active": active,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    async with db.write() as connection:
        if workflow_id is not None:
            found = await connection.execute(
                select(workflows.c.id).where(workflows.c.id == workflow_id)
            )
            if found.first() is not None:
                raise Conflict(f"a workflow with id {workflow_id!r} exists already")
        await connection.execute(workflows.insert().values(**row))
        await connection.execute(
            workflow_versions.insert().values(
                workflow_id=row["id"], number=1, document=_dumps(document), created_at=now
            )
        )
        await audit(connection, "workflow.create", "workflow", row["id"], details={"version": 1})
    return WorkflowDetail(**row, document=document)


async def get_workflow(db: Database, workflow_id: str) -> WorkflowDetail:
    async with db.read() as connection:
        row = await _row(connection, workflow_id)
        return _detail(row, await _document(connection, workflow_id, row.version))


async def current_version(db: Database, workflow_id: str) -> tuple[int, bool]:
    """The number of a workflow's current version and its active flag (one small query)."""
    async with db.read() as connection:
        row = (
            await connection.execute(
                select(workflows.c.version, workflows.c.active).where(workflows.c.id == workflow_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"no workflow with id {workflow_id!r}")
    return int(row[0]), bool(row[1])


async def update_workflow(
    db: Database, workflow_id: str, document: Any, registry: Registry
) -> WorkflowDetail:
    """Validate and store ``document`` as the workflow's next version."""
    workflow = parse_workflow(document, registry)
    now = iso_now()
    async with db.write() as connection:
        row = await _row(connection, workflow_id)
        number = row.version + 1
        await connection.execute(
            workflow_versions.insert().values(
                workflow_id=workflow_id, number=number, document=_dumps(document), created_at=now
            )
        )
        await connection.execute(
            workflows.update()
            .where(workflows.c.id == workflow_id)
            .values(name=workflow.name, version=number, updated_at=now)
        )
        await audit(
            connection, "workflow.save", "workflow", workflow_id, details={"version": number}
        )
        row = await _row(connection, workflow_id)
    return _detail(row, document)


async def set_active(db: Database, workflow_id: str, active: bool) -> WorkflowDetail:
    async with db.write() as connection:
        await _row(connection, workflow_id)
        await connection.execute(
            workflows.update()
            .where(workflows.c.id == workflow_id)
            .values(active=active, updated_at=iso_now())
        )
        action = "workflow.activate" if active else "workflow.deactivate"
        await audit(connection, action, "workflow", workflow_id)
        row = await _row(connection, workflow_id)
        return _detail(row, await _document(connection, workflow_id, row.version))


async def delete_workflow(db: Database, workflow_id: str) -> None:
    """Delete a workflow and its versions (its executions are kept until pruned)."""
    async with db.write() as connection:
        await _row(connection, workflow_id)
        await connection.execute(
            workflow_versions.delete().where(workflow_versions.c.workflow_id == workflow_id)
        )
        await connection.execute(workflows.delete().where(workflows.c.id == workflow_id))
        await audit(connection, "workflow.delete", "workflow", workflow_id)


SortKey = Literal["name", "-name", "updated_at", "-updated_at", "created_at", "-created_at"]


async def list_workflows(
    db: Database,
    *,
    q: str | None = None,
    active: bool | None = None,
    sort: SortKey = "-updated_at",
    limit: int = 50,
    offset: int = 0,
) -> WorkflowPage:
    """A page of workflows: ``q`` searches names (case-insensitive), ``active`` filters."""
    conditions = []
    if q:
        conditions.append(func.lower(workflows.c.name).contains(q.lower(), autoescape=True))
    if active is not None:
        conditions.append(workflows.c.active == active)
    column = workflows.c[sort.lstrip("-")]
    order = (
        [column.desc(), workflows.c.id.desc()] if sort.startswith("-") else [column, workflows.c.id]
    )
    query = select(
        workflows.c.id,
        workflows.c.name,
        workflows.c.active,
        workflows.c.version,
        workflows.c.created_at,
        workflows.c.updated_at,
    ).where(*conditions)
    async with db.read() as connection:
        total = (
            await connection.execute(select(func.count()).select_from(workflows).where(*conditions))
        ).scalar_one()
        rows = (await connection.execute(query.order_by(*order).limit(limit).offset(offset))).all()
    return WorkflowPage([WorkflowSummary(*row) for row in rows], total, limit, offset)


async def list_versions(db: Database, workflow_id: str) -> list[VersionSummary]:
    async with db.read() as connection:
        row = await _row(connection, workflow_id)
        versions = (
            await connection.execute(
                select(
                    workflow_versions.c.number,
                    workflow_versions.c.document,
                    workflow_versions.c.created_at,
                )
                .where(workflow_versions.c.workflow_id == workflow_id)
                .order_by(workflow_versions.c.number.desc())
            )
        ).all()
    return [
        VersionSummary(number, str(json.loads(doc).get("name", "")), created, number == row.version)
        for number, doc, created in versions
    ]


async def get_version(db: Database, workflow_id: str, number: int) -> VersionDetail:
    async with db.read() as connection:
        await _row(connection, workflow_id)
        document = await _document(connection, workflow_id, number)
        created = (
            await connection.execute(
                select(workflow_versions.c.created_at).where(
                    workflow_versions.c.workflow_id == workflow_id,
                    workflow_versions.c.number == number,
                )
            )
        ).scalar_one()
    return VersionDetail(workflow_id, number, created, document)


async def diff_versions(db: Database, workflow_id: str, old: int, new: int) -> str:
    """A unified diff of two versions' documents (as indented JSON)."""
    async with db.read() as connection:
        await _row(connection, workflow_id)
        before = await _document(connection, workflow_id, old)
        after = await _document(connection, workflow_id, new)
    lines = difflib.unified_diff(
        json.dumps(before, indent=2, ensure_ascii=False).splitlines(keepends=True),
        json.dumps(after, indent=2, ensure_ascii=False).splitlines(keepends=True),
        fromfile=f"version {old}",
        tofile=f"version {new}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


async def restore_version(
    db: Database, workflow_id: str, number: int, registry: Registry
) -> WorkflowDetail:
    """Save an old version's document as the newest version."""
    version = await get_version(db, workflow_id, number)
    return await update_workflow(db, workflow_id, version.document, registry)


async def find_workflow(db: Database, reference: str) -> tuple[WorkflowDetail, int]:
    """A workflow by id, else by name (the most recently updated of that name)."""
    async with db.read() as connection:
        row = (
            await connection.execute(select(workflows).where(workflows.c.id == reference))
        ).first()
        if row is None:
            row = (
                await connection.execute(
                    select(workflows)
                    .where(workflows.c.name == reference)
                    .order_by(workflows.c.updated_at.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            raise NotFound(f"no workflow with id or name {reference!r}")
        return _detail(row, await _document(connection, row.id, row.version)), row.version


async def import_workflow(
    db: Database, document: Any, registry: Registry, *, workflow_id: str | None = None
) -> tuple[WorkflowDetail, Literal["created", "updated", "unchanged"]]:
    """Create the workflow, or (when ``workflow_id`` exists) save a new version if it changed."""
    if workflow_id is not None:
        try:
            current = await get_workflow(db, workflow_id)
        except NotFound:
            pass
        else:
            if _dumps(current.document) == _dumps(document):
                return current, "unchanged"
            return await update_workflow(db, workflow_id, document, registry), "updated"
    return await create_workflow(db, document, registry, workflow_id=workflow_id), "created"
