"""The workflow editor: the canvas page, the node panel, expression previews, draft runs and the
data panel.

The canvas script keeps the draft document in the browser and saves it through the JSON API
(``PUT /api/v1/workflows/{id}``). What the browser cannot know is asked here: the panel form of
a node type (``POST /editor/panel``), the value of an expression for a sample item
(``POST /editor/preview``), and a page of a node's input or output (``GET /editor/data``).
``POST /editor/run`` runs the draft as it is in the browser, saved or not.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from flowlite import store
from flowlite.errors import ExpressionError, NotFound, UserError
from flowlite.execution_store import load_record
from flowlite.expressions import EvalContext, compile_value
from flowlite.problems import exception_handlers as problem_handlers
from flowlite.record import Mode
from flowlite.registry import Registry
from flowlite.runner import record_document
from flowlite.sdk import NodeType, as_items
from flowlite.spill import SpillRef, read_items
from flowlite.state import ServerState
from flowlite.store import parse_workflow
from flowlite.web.common import html_exception_handlers, pretty_json
from flowlite.web.forms import param_fields, settings_fields

__all__ = [
    "CATEGORIES",
    "DraftRun",
    "EditorController",
    "editor_page",
    "load_execution_record",
    "node_catalog",
    "node_hints",
    "upstream_of",
]

CATEGORIES = {
    "trigger": "Triggers",
    "flow": "Flow",
    "data": "Data",
    "integration": "Integrations",
    "other": "Other",
}
#: the icon (a symbol of ``partials/_icons.html``) of each built-in type; others by category
ICONS = {
    "webhook": "bolt",
    "schedule_trigger": "clock",
    "manual_trigger": "play",
    "error_trigger": "alert",
    "workflow_trigger": "enter",
    "execute_workflow": "enter",
    "if": "branch",
    "switch": "branch",
    "filter": "filter",
    "merge": "merge",
    "wait": "clock",
    "stop_and_error": "alert",
    "respond_to_webhook": "reply",
    "set": "pen",
    "rename_keys": "pen",
    "code": "code",
    "http_request": "globe",
    "sort": "sort",
    "limit": "filter",
    "crypto": "key",
    "date_time": "clock",
}
CATEGORY_ICONS = {"trigger": "bolt", "flow": "branch", "data": "table", "integration": "globe"}
DATA_PAGE = 50
MAX_COLUMNS = 30


def icon_of(node_type: type[NodeType] | NodeType) -> str:
    return ICONS.get(node_type.type) or CATEGORY_ICONS.get(node_type.category, "box")


def node_catalog(registry: Registry) -> list[dict[str, Any]]:
    """Every node type as the canvas and palette need it: its description plus an icon."""
    return [{**t.describe(), "icon": icon_of(t)} for t in registry.latest()]


def palette_groups(catalog: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in catalog:
        groups.setdefault(entry["category"], []).append(entry)
    order = list(CATEGORIES)
    return [
        (CATEGORIES.get(name, name.title()), sorted(entries, key=lambda e: e["display_name"]))
        for name, entries in sorted(
            groups.items(), key=lambda g: order.index(g[0]) if g[0] in order else 99
        )
    ]


def next_fire_times(parameters: dict[str, Any], timezone: str, count: int = 3) -> list[str]:
    """The next times a schedule trigger's cron line fires (empty for an interval or bad line)."""
    cron = parameters.get("cron")
    if not isinstance(cron, str):
        return []
    from apscheduler.triggers.cron import CronTrigger

    from flowlite.nodes.triggers import cron_trigger_kwargs

    try:
        zone = zoneinfo.ZoneInfo(str(parameters.get("timezone") or timezone))
        trigger = CronTrigger(timezone=zone, **cron_trigger_kwargs(cron))
    except (ValueError, KeyError, zoneinfo.ZoneInfoNotFoundError):
        return []
    times: list[str] = []
    previous = None
    now = dt.datetime.now(zone)
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire.strftime("%Y-%m-%d %H:%M %Z"))
        previous, now = fire, fire + dt.timedelta(microseconds=1)
    return times


def node_hints(node: dict[str, Any], public_url: str, timezone: str) -> dict[str, Any]:
    """What a trigger node shows: its webhook URLs, or the next times its schedule fires."""
    parameters = node.get("parameters") or {}
    if node.get("type") == "webhook" and isinstance(parameters.get("path"), str):
        path = parameters["path"].strip("/")
        return {
            "method": parameters.get("method", "POST"),
            "test_url": f"{public_url}/webhook-test/{path}",
            "production_url": f"{public_url}/webhook/{path}",
        }
    if node.get("type") == "schedule_trigger":
        every = parameters.get("every")
        if isinstance(every, dict) and every:
            unit, amount = next(iter(every.items()))
            return {"every": f"every {amount} {unit}"}
        return {"next_times": next_fire_times(parameters, timezone)}
    return {}


def upstream_of(document: dict[str, Any], target: str) -> dict[str, Any]:
    """The part of a workflow that "run to this node" runs: ``target`` and every node before it."""
    parents: dict[str, set[str]] = {}
    for edge in document.get("connections") or []:
        if isinstance(edge, dict):
            parents.setdefault(str(edge.get("to")), set()).add(str(edge.get("from")))
    keep, todo = {target}, [target]
    while todo:
        for parent in parents.get(todo.pop(), ()):
            if parent not in keep:
                keep.add(parent)
                todo.append(parent)
    part = dict(document)
    part["nodes"] = [n for n in document.get("nodes") or [] if n.get("name") in keep]
    part["connections"] = [
        e
        for e in document.get("connections") or []
        if e.get("from") in keep and e.get("to") in keep
    ]
    part["pinned"] = {k: v for k, v in (document.get("pinned") or {}).items() if k in keep}
    return part


class DraftRun(msgspec.Struct, forbid_unknown_fields=True):
    """A run of the editor's draft of a stored workflow: the document, the trigger's items,
    and where to stop."""

    document: dict[str, Any]
    workflow_id: str
    items: list[dict[str, Any]] | dict[str, Any] | None = None
    start: str | None = None
    until: str | None = None


class DraftStarted(msgspec.Struct):
    id: str
    events: str
    record: str


def _roots(document: dict[str, Any], registry: Registry) -> list[str]:
    """Nodes without incoming edges, triggers first: where a draft run may start."""
    targets = {e.get("to") for e in document.get("connections") or []}
    names = [n["name"] for n in document.get("nodes") or [] if n.get("name") not in targets]
    triggers = {
        n["name"]
        for n in document.get("nodes") or []
        if (found := registry.find(str(n.get("type")))) is not None and found.is_trigger
    }
    return sorted(names, key=lambda name: name not in triggers)


async def load_execution_record(state: ServerState, execution_id: str) -> dict[str, Any]:
    live = state.runner.live(execution_id)
    if live is not None:
        document: dict[str, Any] = msgspec.to_builtins(record_document(*live))
        return document
    _, record = await load_record(state.db, execution_id)
    return record


def output_items(
    state: ServerState,
    record: dict[str, Any],
    node: str,
    run: dict[str, Any],
    output: str,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of one output of a node run (read from its spill file when it was spilled)."""
    spilled = (run.get("spilled") or {}).get(output)
    if spilled is not None:
        ref = SpillRef(**spilled)
        directory = state.config.executions_dir / str(record["id"])
        return read_items(directory, ref, offset, limit), ref.items
    items = run.get("outputs", {}).get(output, [])
    return items[offset : offset + limit], len(items)


def _columns(items: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in items:
        data = entry.get("json")
        if isinstance(data, dict):
            for key in data:
                seen.setdefault(str(key), None)
    return list(seen)[:MAX_COLUMNS]


def editor_page(
    flowlite: ServerState, detail: store.WorkflowDetail | None, document: dict[str, Any]
) -> Template:
    """The canvas page of a stored workflow (``detail``) or of a new one (``None``)."""
    catalog = node_catalog(flowlite.registry)
    context = {
        "workflow": detail,
        "document": document,
        "catalog": catalog,
        "palette": palette_groups(catalog),
        "next_runs": next_runs(document, flowlite.config.timezone),
        "nav": "workflows",
    }
    return Template(template_name="editor/page.html", context=context)


def next_runs(document: dict[str, Any], timezone: str) -> dict[str, str]:
    """The next time each schedule trigger fires, shown on its node on the canvas."""
    zone = (document.get("settings") or {}).get("timezone") or timezone
    found: dict[str, str] = {}
    for node in document.get("nodes") or []:
        if isinstance(node, dict) and node.get("type") == "schedule_trigger":
            times = next_fire_times(node.get("parameters") or {}, str(zone), 1)
            if times:
                found[str(node.get("name"))] = f"next {times[0]}"
    return found


class EditorController(Controller):
    path = "/editor"
    include_in_schema = False
    request_class = HTMXRequest
    exception_handlers = html_exception_handlers()

    @post("/panel")
    async def panel(
        self,
        flowlite: ServerState,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """The node panel of a node (``node``: its JSON from the draft)."""
        try:
            node = json.loads(data.get("node", ""))
        except json.JSONDecodeError:
            raise UserError("the node panel needs the node as JSON") from None
        node_type = flowlite.registry.find(str(node.get("type")), node.get("version"))
        if node_type is None:
            raise NotFound(f"unknown node type {node.get('type')!r}")
        context = {
            "node": node,
            "type": {**node_type.describe(), "icon": icon_of(node_type)},
            "fields": param_fields(node_type.params, node.get("parameters") or {}),
            "settings": settings_fields(node),
            "hints": node_hints(node, flowlite.config.public_url, flowlite.config.timezone),
        }
        return Template(template_name="editor/_panel.html", context=context)

    @post("/preview")
    async def preview(
        self,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """The value of a parameter (``value``) for item ``index`` of ``items`` (JSON)."""
        value = data.get("value", "")
        try:
            items = as_items(json.loads(data.get("items") or "[]"))
            index = int(data.get("index") or 0)
        except (json.JSONDecodeError, ValueError, TypeError):
            items, index = [], 0
        context: dict[str, Any] = {"error": None, "value": None, "text": None}
        try:
            compiled = compile_value(value)
            result = compiled.evaluate(EvalContext(items=items), index)
        except ExpressionError as exc:
            if not items:  # most expressions read the input: say why there is no value yet
                context["waiting"] = True
            context["error"] = exc.reason
        else:
            context["value"] = result
            context["text"] = result if isinstance(result, str) else pretty_json(result)
            context["kind"] = type(result).__name__ if result is not None else "null"
        return Template(template_name="editor/_preview.html", context=context)

    @post("/run", status_code=202, exception_handlers=problem_handlers())
    async def run_draft(self, flowlite: ServerState, data: DraftRun) -> DraftStarted:
        """Run the draft (or, with ``until``, the part of it up to that node) as an execution
        of the workflow's current version; manual mode, so pinned outputs are used."""
        detail = await store.get_workflow(flowlite.db, data.workflow_id)
        document = upstream_of(data.document, data.until) if data.until else data.document
        workflow = parse_workflow(document, flowlite.registry)
        start = data.start
        if start is None or workflow.node(start) is None:
            roots = _roots(document, flowlite.registry)
            start = roots[0] if len(roots) > 1 else None
        execution = flowlite.runner.start(
            detail.id,
            detail.version,
            document,
            workflow=workflow,
            mode=Mode.MANUAL,
            items=as_items(data.items) if data.items is not None else None,
            start=start,
            active=detail.active,
        )
        return DraftStarted(
            execution.id,
            f"/api/v1/executions/{execution.id}/events",
            f"/api/v1/executions/{execution.id}",
        )

    @get("/data")
    async def data(
        self,
        request: HTMXRequest,
        flowlite: ServerState,
        execution: str,
        node: str,
        side: str = "output",
        output: str | None = None,
        run: Annotated[int, Parameter(ge=0)] = 0,
        offset: Annotated[int, Parameter(ge=0)] = 0,
        view: str = "table",
        sources: str = "[]",
    ) -> Template:
        """A page of a node run's output (or input: the outputs of ``sources``, a JSON list of
        ``[node, output]`` feeding it) as a table or as JSON."""
        record = await load_execution_record(flowlite, execution)
        runs = record.get("nodes", {}).get(node, {}).get("runs", [])
        context: dict[str, Any] = {
            "execution": execution,
            "node": node,
            "side": side,
            "view": "json" if view == "json" else "table",
            "run_index": run,
            "runs": runs,
            "offset": offset,
            "page": DATA_PAGE,
            "sources": sources,
            "outputs": [],
            "output": None,
            "items": [],
            "total": 0,
            "error": None,
            "ran": bool(runs),
        }
        if runs:
            current = runs[min(run, len(runs) - 1)]
            context["error"] = current.get("error")
            context["pinned"] = current.get("pinned", False)
            context["input_count"] = current.get("input_items", 0)
            if side == "input":
                items = self._input_items(flowlite, record, sources)
                context["total"] = len(items)
                context["items"] = items[offset : offset + DATA_PAGE]
            else:
                names = list(current.get("outputs", {}))
                chosen = output if output in names else (names[0] if names else None)
                context["outputs"] = [
                    (name, output_items(flowlite, record, node, current, name, 0, 0)[1])
                    for name in names
                ]
                context["output"] = chosen
                if chosen is not None:
                    page, total = output_items(
                        flowlite, record, node, current, chosen, offset, DATA_PAGE
                    )
                    context["items"], context["total"] = page, total
        context["columns"] = _columns(context["items"])
        return Template(template_name="editor/_data.html", context=context)

    def _input_items(
        self, flowlite: ServerState, record: dict[str, Any], sources: str
    ) -> list[dict[str, Any]]:
        try:
            pairs = json.loads(sources)
        except json.JSONDecodeError:
            pairs = []
        items: list[dict[str, Any]] = []
        for pair in pairs if isinstance(pairs, list) else []:
            if not (isinstance(pair, list) and len(pair) == 2):
                continue
            runs = record.get("nodes", {}).get(str(pair[0]), {}).get("runs", [])
            for run in runs:
                page, _ = output_items(flowlite, record, str(pair[0]), run, str(pair[1]), 0, 10_000)
                items.extend(page)
        return items
