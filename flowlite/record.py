"""The execution record (spec section 4): what every execution produces.

Statuses and modes are fixed sets; :data:`TERMINAL` lists the statuses an execution never
leaves.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import msgspec

from flowlite.sdk import Item

__all__ = [
    "TERMINAL",
    "ErrorInfo",
    "ExecutionRecord",
    "Mode",
    "NodeRecord",
    "NodeRun",
    "Status",
    "WorkflowRef",
    "iso_now",
    "record_to_dict",
]


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCESS = "success"
    ERROR = "error"
    CANCELED = "canceled"
    CRASHED = "crashed"


TERMINAL = frozenset({Status.SUCCESS, Status.ERROR, Status.CANCELED, Status.CRASHED})


class Mode(StrEnum):
    MANUAL = "manual"
    CLI = "cli"
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    ERROR = "error"
    SUBWORKFLOW = "subworkflow"
    RETRY = "retry"


class ErrorInfo(msgspec.Struct, omit_defaults=True):
    message: str
    error_class: str
    node: str | None = None
    item_index: int | None = None
    #: "user" when the workflow or its code failed, "internal" when flowlite itself did
    origin: str = "user"


class NodeRun(msgspec.Struct, omit_defaults=True):
    index: int
    status: str
    started_at: str
    duration_ms: float = 0.0
    input_items: int = 0
    outputs: dict[str, list[Item]] = {}
    error: ErrorInfo | None = None
    logs: list[str] = []
    pinned: bool = False


class NodeRecord(msgspec.Struct):
    runs: list[NodeRun] = []


class WorkflowRef(msgspec.Struct):
    id: str | None
    name: str
    version: int | None = None


class ExecutionRecord(msgspec.Struct):
    id: str
    workflow: WorkflowRef
    mode: str
    status: str
    started_at: str
    finished_at: str | None = None
    error: ErrorInfo | None = None
    nodes: dict[str, NodeRecord] = {}
    #: what the execution answered its webhook with, when it did
    response: dict[str, Any] | None = None
    #: why it was cancelled (e.g. the workflow timeout)
    cancel_reason: str | None = None
    #: while `waiting`: {node, run_index, until (ISO or null: resume by webhook only), items}
    wait: dict[str, Any] | None = None


def iso_now() -> str:
    """The current UTC time as ``2026-11-21T10:00:00.000Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def record_to_dict(record: ExecutionRecord) -> dict[str, Any]:
    """The record as plain JSON data, as printed by ``flowlite run --output full``."""
    data: dict[str, Any] = msgspec.to_builtins(record)
    if data.get("response") is None:
        data.pop("response", None)
    for key in ("cancel_reason", "wait"):
        if data.get(key) is None:
            data.pop(key, None)
    return data
