"""Trigger nodes: where an execution starts. They have no inputs and emit the run's items."""

from __future__ import annotations

import zoneinfo
from typing import Any

from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

__all__ = ["NODES", "cron_trigger_kwargs"]


class _Trigger(NodeType):
    inputs = 0
    category = "trigger"

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        return {"main": ctx.trigger_items or [{"json": {}}]}


class ManualTrigger(_Trigger):
    type = "manual_trigger"
    display_name = "Manual trigger"
    description = "Starts a run by hand (editor, API or `flowlite run`) with the run's input items."
    single = True


class WorkflowTrigger(_Trigger):
    type = "workflow_trigger"
    display_name = "When called by another workflow"
    description = (
        "Starts when an Execute Workflow node calls this workflow; emits the caller's items."
    )
    single = True
    params = (
        Param(
            "inputs",
            "list",
            "Inputs this workflow accepts (documentation and editor hints)",
            fields=(
                Param("name", "string", required=True),
                Param(
                    "type",
                    "options",
                    options=("any", "string", "number", "boolean", "object", "list"),
                    default="any",
                ),
            ),
        ),
    )


class ErrorTrigger(_Trigger):
    type = "error_trigger"
    display_name = "Error trigger"
    description = (
        "Starts when an execution of a workflow that names this one as its error workflow fails."
    )
    single = True


WEBHOOK_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


class Webhook(_Trigger):
    type = "webhook"
    display_name = "Webhook"
    description = "Starts on an HTTP request to /webhook/<path>; emits {method, path, params, query, headers, body}."
    params = (
        Param(
            "path",
            "string",
            "URL path after /webhook/; may hold :param segments",
            required=True,
            expressions=False,
        ),
        Param("method", "options", options=WEBHOOK_METHODS, default="POST", expressions=False),
        Param(
            "respond",
            "options",
            "When to answer the request",
            options=("immediately", "last_node", "respond_node"),
            default="immediately",
            expressions=False,
        ),
        Param("response_code", "integer", default=200, minimum=100, maximum=599, expressions=False),
        Param(
            "response_data",
            "options",
            "For last_node: what to answer with",
            options=("first_item", "all_items", "no_data"),
            default="first_item",
            expressions=False,
        ),
        Param(
            "auth",
            "options",
            "How callers authenticate; the secret is the credential in the node's `auth` slot",
            options=("none", "header", "basic", "hmac"),
            default="none",
            expressions=False,
        ),
        Param(
            "auth_header",
            "string",
            "For `header`: the header carrying the credential's `value` (default: the credential's `name`, else Authorization)",
            expressions=False,
        ),
        Param(
            "hmac_header",
            "string",
            "For `hmac`: the header carrying the hex HMAC-SHA256 of `<timestamp>.<body>`",
            default="X-Flowlite-Signature",
            expressions=False,
        ),
        Param(
            "timestamp_header",
            "string",
            "For `hmac`: the header carrying the UNIX time the request was signed at",
            default="X-Flowlite-Timestamp",
            expressions=False,
        ),
        Param(
            "tolerance_seconds",
            "integer",
            "For `hmac`: how far the timestamp may be from the server's time",
            default=300,
            minimum=1,
            maximum=86400,
            expressions=False,
        ),
        Param(
            "max_body_bytes",
            "integer",
            "Largest accepted body",
            default=16 * 1024 * 1024,
            minimum=0,
            expressions=False,
        ),
        Param(
            "rate_limit",
            "integer",
            "Requests per minute before answering 429 (0: no limit)",
            default=0,
            minimum=0,
            expressions=False,
        ),
        Param(
            "cors_origins",
            "list",
            "Origins allowed by CORS (empty: CORS off)",
            element="string",
            expressions=False,
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        path = parameters.get("path")
        problems: list[tuple[str, str]] = []
        if isinstance(path, str):
            stripped = path.strip("/")
            if not stripped:
                problems.append(("path", "must not be empty"))
            for segment in stripped.split("/"):
                if segment.startswith(":") and not segment[1:].isidentifier():
                    problems.append(("path", f"bad path parameter {segment!r}"))
        return problems


def cron_trigger_kwargs(cron: str) -> dict[str, str]:
    """Map a 5-field (minute first) or 6-field (second first) cron line to APScheduler fields."""
    fields = cron.split()
    names: tuple[str, ...]
    if len(fields) == 5:
        names = ("minute", "hour", "day", "month", "day_of_week")
    elif len(fields) == 6:
        names = ("second", "minute", "hour", "day", "month", "day_of_week")
    else:
        raise ValueError(f"a cron line has 5 or 6 fields, {cron!r} has {len(fields)}")
    return dict(zip(names, fields, strict=True))


EVERY_UNITS = ("seconds", "minutes", "hours", "days")


class ScheduleTrigger(_Trigger):
    type = "schedule_trigger"
    display_name = "Schedule"
    description = "Starts on a cron schedule or at a fixed interval; emits {timestamp, timezone, scheduled_for}."
    params = (
        Param(
            "cron",
            "string",
            "5 fields (minute first) or 6 fields (second first)",
            expressions=False,
        ),
        Param(
            "every",
            "object",
            "An interval: one of seconds, minutes, hours, days",
            fields=tuple(Param(u, "integer", minimum=1) for u in EVERY_UNITS),
            expressions=False,
        ),
        Param("timezone", "string", "IANA name; default: the workflow's", expressions=False),
        Param(
            "misfire",
            "options",
            "Slots missed while the server was down: skip them, or run once",
            options=("skip", "run_once"),
            default="skip",
            expressions=False,
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        cron, every = parameters.get("cron"), parameters.get("every")
        if (cron is None) == (every is None):
            return [("cron", "give exactly one of `cron` or `every`")]
        problems: list[tuple[str, str]] = []
        if isinstance(cron, str):
            try:
                from apscheduler.triggers.cron import CronTrigger

                CronTrigger(**cron_trigger_kwargs(cron))
            except ValueError as exc:
                problems.append(("cron", f"not a valid cron line: {exc}"))
        if isinstance(every, dict):
            given = [u for u in EVERY_UNITS if every.get(u)]
            if len(given) != 1:
                problems.append(("every", "give exactly one of seconds, minutes, hours, days"))
        zone = parameters.get("timezone")
        if isinstance(zone, str):
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problems.append(("timezone", f"unknown timezone {zone!r}"))
        return problems


NODES: list[type[NodeType]] = [
    ManualTrigger,
    WorkflowTrigger,
    ErrorTrigger,
    Webhook,
    ScheduleTrigger,
]
