"""The webhook endpoints: ``/webhook/<path>`` (active workflows), ``/webhook-test/<path>`` (an
editor's draft, once) and ``/webhook-waiting/<execution id>`` (resume a waiting execution).

A request goes through: the route table (404, or 405 naming the methods the path accepts), the
CORS preflight (``OPTIONS``), the rate limit (429), the body size limit (413), authentication
(401) and body parsing (400), then starts the workflow at the webhook node with one item
``{method, path, params, query, headers, body}``.

The body parser is chosen by the Content-Type header alone: ``application/json`` (and
``*+json``) is parsed as JSON; ``application/x-www-form-urlencoded`` into an object of fields;
``multipart/form-data`` into fields, each uploaded file becoming ``binary.<field>`` with its
bytes from the request itself; anything else is kept as bytes in ``binary.body`` (and as text
in ``body`` when the type is textual). No parser ever opens a file named in a request.

Answers (the node's ``respond``): ``immediately`` stores the execution (status ``queued``, with
its request) and commits before answering, so an answered request is never lost: after a crash
the execution runs on the next start. ``last_node`` answers with the last node's output when
the workflow ends; ``respond_node`` with what its `respond_to_webhook` node sends, once that
node ran (the execution's row is committed before the answer, unless the workflow keeps no
successful executions).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import multipart  # type: ignore[import-untyped]
from litestar import HttpMethod, Request, Response, delete, get, post, route
from litestar.exceptions import HTTPException
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import postgresql, sqlite

from flowlite.activation import Triggers, WebhookRoute, normalize_path
from flowlite.errors import InternalError, UserError
from flowlite.executor import Execution, last_items
from flowlite.problems import problem
from flowlite.queueing import Job, queued_inputs, queued_row
from flowlite.record import ExecutionRecord, Mode, Status, iso_now
from flowlite.runner import Unavailable
from flowlite.sdk import Item, WebhookResponse
from flowlite.state import ServerState
from flowlite.store import get_workflow
from flowlite.tables import webhook_signatures
from flowlite.waits import NotWaiting

__all__ = ["ROUTES", "parse_body", "sign"]

log = logging.getLogger(__name__)

METHODS: list[HttpMethod] = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
    HttpMethod.HEAD,
    HttpMethod.OPTIONS,
]
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
_MAX_PARTS = 256


class _Refused(Exception):
    """A request refused before the workflow starts, with the response to send."""

    def __init__(self, response: Response[Any]) -> None:
        super().__init__(response.status_code)
        self.response = response


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The HMAC signature of a request: hex SHA-256 of ``<timestamp>.<body>``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


# -- reading the request ------------------------------------------------------------------
async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(problem(413, f"the request body is larger than the {limit} bytes allowed"))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(
                problem(413, f"the request body is larger than the {limit} bytes allowed")
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = content_type.partition(";")
    options = {}
    for part in rest.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            options[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), options


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            current = fields[name]
            fields[name] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            fields[name] = value
    return fields


def _binary(data: bytes, mime_type: str, file_name: str | None = None) -> dict[str, Any]:
    binary: dict[str, Any] = {
        "mime_type": mime_type,
        "size": len(data),
        "data": base64.b64encode(data).decode("ascii"),
    }
    if file_name:
        binary["file_name"] = file_name
    return binary


def _multipart(body: bytes, boundary: str) -> tuple[dict[str, Any], dict[str, Any]]:
    fields: list[tuple[str, str]] = []
    files: dict[str, Any] = {}
    segment: Any = None
    data: list[bytes] = []
    with multipart.PushMultipartParser(boundary, max_segment_count=_MAX_PARTS) as parser:
        for chunk in (body, b""):
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    segment, data = event, []
                elif event is None and segment is not None:
                    content = b"".join(data)
                    name = segment.name or ""
                    if segment.filename is not None:
                        mime = segment.content_type or "application/octet-stream"
                        files[name or f"file{len(files)}"] = _binary(
                            content, mime, segment.filename
                        )
                    else:
                        fields.append((name, content.decode(segment.charset or "utf-8", "replace")))
                    segment = None
                else:
                    data.append(bytes(event))
    return _fields(fields), files


def parse_body(content_type: str | None, body: bytes) -> tuple[Any, dict[str, Any]]:
    """The ``body`` value and the ``binary`` fields of a request, by its Content-Type."""
    kind, options = _media_type(content_type or "")
    if not body and kind in ("", JSON, "application/x-www-form-urlencoded"):
        return {}, {}
    try:
        if kind == JSON or (kind.startswith("application/") and kind.endswith("+json")):
            return msgspec.json.decode(body), {}
        if kind == "application/x-www-form-urlencoded":
            form = body.decode(options.get("charset", "utf-8"))
            return _fields(parse_qsl(form, keep_blank_values=True)), {}
        if kind == "multipart/form-data":
            boundary = options.get("boundary")
            if not boundary:
                raise ValueError("multipart/form-data without a boundary")
            return _multipart(body, boundary)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError, LookupError) as exc:
        what = kind or "the body"
        raise _Refused(problem(400, f"the request body is not valid {what}: {exc}")) from None
    except multipart.MultipartError as exc:
        raise _Refused(problem(400, f"the request body is not valid multipart: {exc}")) from None
    mime = kind or "application/octet-stream"
    text: str | None = None
    if kind.startswith("text/") or kind.endswith(("xml", "javascript")):
        try:
            text = body.decode(options.get("charset", "utf-8"))
        except (UnicodeDecodeError, LookupError):
            text = None
    return text, {"body": _binary(body, content_type or mime)}


def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _item(
    request: Request[Any, Any, Any],
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
) -> Item:
    parsed, binary = parse_body(headers.get("content-type"), body)
    query = _fields(
        parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
    )
    item: Item = {
        "json": {
            "method": request.method,
            "path": path,
            "params": params,
            "query": query,
            "headers": headers,
            "body": parsed,
        }
    }
    if binary:
        item["binary"] = binary
    return item


# -- authentication -----------------------------------------------------------------------
def _unauthorized(detail: str, **headers: str) -> _Refused:
    response = problem(401, detail, "unauthorized")
    response.headers.update(headers)
    return _Refused(response)


def _secret(credential: dict[str, Any], key: str, route: WebhookRoute) -> str:
    value = credential.get(key)
    if not isinstance(value, str) or not value:
        log.error(
            "credential %r of webhook node %r has no %r string", route.credential, route.node, key
        )
        raise _Refused(
            problem(500, "the webhook's credential is misconfigured; see the server log")
        )
    return value


async def _authenticate(
    state: ServerState, route: WebhookRoute, headers: dict[str, str], body: bytes
) -> None:
    options = route.options
    if options.auth == "none":
        return
    source = state.runner.engine.credentials
    try:
        if source is None or route.credential is None:
            raise UserError("no credential source")
        credential = await source(route.credential, workflow_id=route.workflow_id)
    except UserError as exc:
        log.error("webhook node %r: %s", route.node, exc.message)
        raise _Refused(
            problem(500, "the webhook's credential is not available; see the server log")
        ) from None
    if options.auth == "header":
        expected = _secret(credential, "value", route)
        name = options.auth_header or str(credential.get("name") or "Authorization")
        given = headers.get(name.lower())
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise _unauthorized(f"missing or wrong {name} header")
    elif options.auth == "basic":
        user, password = _secret(credential, "user", route), _secret(credential, "password", route)
        challenge = {"WWW-Authenticate": 'Basic realm="flowlite", charset="UTF-8"'}
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        try:
            given_user, _, given_password = (
                base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized(
                "the Authorization header is not valid basic auth", **challenge
            ) from None
        same_user = hmac.compare_digest(given_user.encode(), user.encode())
        same_password = hmac.compare_digest(given_password.encode(), password.encode())
        if scheme.lower() != "basic" or not (same_user and same_password):
            raise _unauthorized("wrong or missing user name or password", **challenge)
    elif options.auth == "hmac":
        await _check_signature(state, route, headers, body, _secret(credential, "secret", route))


async def _check_signature(
    state: ServerState, route: WebhookRoute, headers: dict[str, str], body: bytes, secret: str
) -> None:
    options = route.options
    stamp = headers.get(options.timestamp_header.lower())
    given = headers.get(options.hmac_header.lower())
    if stamp is None or given is None:
        raise _unauthorized(
            f"signed requests carry {options.hmac_header} and {options.timestamp_header} headers"
        )
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise _unauthorized(f"{options.timestamp_header} is not a UNIX time in seconds") from None
    if abs(time.time() - timestamp) > options.tolerance_seconds:
        raise _unauthorized(
            f"{options.timestamp_header} is more than {options.tolerance_seconds} seconds away "
            "from the server's time (an old request, or a wrong clock)"
        )
    expected = sign(secret, timestamp, body)
    signature = given.strip().lower().removeprefix("sha256=")
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise _unauthorized(f"wrong signature in {options.hmac_header}")
    expires = dt.datetime.fromtimestamp(timestamp + options.tolerance_seconds, dt.UTC)
    if not await _remember(state, expected, expires):
        raise _unauthorized("this signed request was received before (a replay)")


async def _remember(state: ServerState, signature: str, expires: dt.datetime) -> bool:
    """Store a seen signature; False when it was seen before. Expired ones are pruned
    now and then (about one request in 256)."""
    db = state.db
    stamp = expires.isoformat(timespec="milliseconds")[:-6] + "Z"
    dialect: Any = postgresql if db.dialect == "postgresql" else sqlite
    statement = (
        dialect.insert(webhook_signatures)
        .values(signature=signature, expires_at=stamp)
        .on_conflict_do_nothing(index_elements=["signature"])
    )
    async with db.write() as connection:
        stored = await connection.execute(statement)
        if signature.startswith("00"):
            await connection.execute(
                sql_delete(webhook_signatures).where(webhook_signatures.c.expires_at < iso_now())
            )
    return bool(stored.rowcount == 1)


# -- CORS -----------------------------------------------------------------------------------
def _allowed_origin(route: WebhookRoute, headers: dict[str, str]) -> str | None:
    origins = route.options.cors_origins
    origin = headers.get("origin")
    if not origins or origin is None:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def _cors(route: WebhookRoute, headers: dict[str, str]) -> dict[str, str]:
    origin = _allowed_origin(route, headers)
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _preflight(triggers: Triggers, test: bool, path: str, headers: dict[str, str]) -> Response[Any]:
    table = triggers.tests if test else triggers.table
    wanted = headers.get("access-control-request-method", "").upper()
    found = table.match(wanted, path) if wanted else None
    if found is None:
        methods = table.methods(path)
        if not methods:
            return _not_found(triggers, test, "OPTIONS", path)
        return Response(b"", status_code=204, headers={"Allow": ", ".join([*methods, "OPTIONS"])})
    route_, _ = found
    origin = _allowed_origin(route_, headers)
    if origin is None:
        return problem(403, "this origin may not call the webhook (see its cors_origins)")
    allow = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": f"{route_.method}, OPTIONS",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    requested = headers.get("access-control-request-headers")
    if requested:
        allow["Access-Control-Allow-Headers"] = requested
    return Response(b"", status_code=204, headers=allow)


# -- answers --------------------------------------------------------------------------------
def _not_found(triggers: Triggers, test: bool, method: str, path: str) -> Response[Any]:
    table = triggers.tests if test else triggers.table
    methods = table.methods(path) if method != "OPTIONS" else []
    prefix = "webhook-test" if test else "webhook"
    if methods:
        response = problem(
            405, f"/{prefix}/{path} accepts {', '.join(methods)}, not {method}", "method"
        )
        response.headers["Allow"] = ", ".join(methods)
        return response
    if test:
        detail = (
            f"no test webhook listens on {method} /webhook-test/{path}: start listening in the "
            "editor (POST /api/v1/workflows/<id>/test-webhook) and send the request within "
            "the time it gives"
        )
    else:
        detail = f"no active workflow has a webhook on {method} /webhook/{path}"
    return problem(404, detail, "no-webhook")


def _json(value: Any, status: int, headers: dict[str, str], head: bool) -> Response[Any]:
    body = b"" if head else msgspec.json.encode(value)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _answer(response: WebhookResponse, headers: dict[str, str], head: bool) -> Response[Any]:
    return Response(
        b"" if head else response.body,
        status_code=response.status,
        media_type=response.content_type or TEXT,
        headers={**response.headers, **headers},
    )


def _ended(
    record: ExecutionRecord | None, execution_id: str, headers: dict[str, str]
) -> Response[Any]:
    """The answer when the execution ended without answering (respond_node and last_node)."""
    if record is None:
        return problem(503, "the server stopped before the workflow ended", "unavailable")
    if record.status == Status.WAITING:
        return _json({"execution_id": execution_id, "status": "waiting"}, 202, headers, False)
    if record.status == Status.SUCCESS:
        detail = "the workflow ended without answering: no respond_to_webhook node ran"
        response = problem(500, detail, "no-answer", execution_id=execution_id)
    else:
        detail = "the workflow failed"
        response = problem(500, detail, "workflow-failed", execution_id=execution_id)
    response.headers.update(headers)
    return response


def _last_node(
    route: WebhookRoute,
    record: ExecutionRecord,
    execution: Execution,
    headers: dict[str, str],
    head: bool,
) -> Response[Any]:
    options = route.options
    if record.status != Status.SUCCESS:
        return _ended(record, record.id, headers)
    items = last_items(record, execution.finish_order)
    if options.response_data == "no_data":
        return Response(b"", status_code=options.response_code, media_type=TEXT, headers=headers)
    if options.response_data == "all_items":
        return _json([i.get("json", {}) for i in items], options.response_code, headers, head)
    return _json(items[0].get("json", {}) if items else {}, options.response_code, headers, head)


async def _run(
    state: ServerState,
    triggers: Triggers,
    route: WebhookRoute,
    item: Item,
    cors: dict[str, str],
    head: bool,
) -> Response[Any]:
    options = route.options
    mode = Mode.MANUAL if route.test else Mode.WEBHOOK
    job = Job(
        route.workflow_id,
        route.workflow_name,
        route.version,
        route.document,
        mode,
        [item],
        route.node,
        workflow=route.workflow,
    )
    queue = triggers.queue
    writer = state.runner.writer
    if options.respond == "immediately":
        if route.test:
            await queue.submit(job)
        else:  # stored before the answer: an answered request is never lost
            writer.insert(queued_row(job), queued_inputs(job))
            await writer.written(job.id)
            with contextlib.suppress(Unavailable):  # stored: it runs on the next start
                await queue.submit(job, stored=True)
        body = {"message": "Workflow was started", "execution_id": job.id}
        return _json(body, options.response_code, cors, head)
    loop = asyncio.get_running_loop()
    job.ended = loop.create_future()
    if options.respond == "last_node":
        job.started = loop.create_future()
        await queue.submit(job)
        record = await job.ended
        if record is None:
            return _ended(None, job.id, cors)
        return _last_node(route, record, job.started.result(), cors, head)
    answer: asyncio.Future[WebhookResponse] = loop.create_future()

    def respond(response: WebhookResponse) -> None:
        if not answer.done():
            answer.set_result(response)

    job.responder = respond
    await queue.submit(job)
    await asyncio.wait((answer, job.ended), return_when=asyncio.FIRST_COMPLETED)
    if answer.done():
        if route.keeps and not route.test:
            await writer.written(job.id)
        return _answer(answer.result(), cors, head)
    return _ended(job.ended.result(), job.id, cors)


async def _handle(request: Request[Any, Any, Any], path: str, *, test: bool) -> Response[Any]:
    state: ServerState = request.app.state.flowlite
    triggers = _triggers(state)
    path = normalize_path(path)
    method = request.method
    headers = _headers(request)
    if method == "OPTIONS":
        return _preflight(triggers, test, path, headers)
    found = triggers.take_test(method, path) if test else triggers.table.match(method, path)
    if found is None:
        return _not_found(triggers, test, method, path)
    webhook, params = found
    cors = _cors(webhook, headers)
    try:
        if webhook.options.rate_limit:
            retry = triggers.bucket(webhook).take()
            if retry > 0:
                response = problem(429, f"more than {webhook.options.rate_limit} requests a minute")
                response.headers["Retry-After"] = str(max(1, round(retry)))
                raise _Refused(response)
        body = await _read_body(request, webhook.options.max_body_bytes)
        await _authenticate(state, webhook, headers, body)
        item = _item(request, path, params, headers, body)
    except _Refused as refused:
        refused.response.headers.update(cors)
        return refused.response
    return await _run(state, triggers, webhook, item, cors, method == "HEAD")


def _triggers(state: ServerState) -> Triggers:
    if state.triggers is None:
        raise InternalError("the triggers are not running in this process")
    triggers: Triggers = state.triggers
    return triggers


@route(
    "/webhook/{path:path}",
    http_method=METHODS,
    request_max_body_size=None,
    include_in_schema=False,
)
async def production_webhook(request: Request[Any, Any, Any], path: str) -> Response[Any]:
    """A webhook of an active workflow."""
    return await _handle(request, path, test=False)


@route(
    "/webhook-test/{path:path}",
    http_method=METHODS,
    request_max_body_size=None,
    include_in_schema=False,
)
async def test_webhook(request: Request[Any, Any, Any], path: str) -> Response[Any]:
    """A test URL: runs the draft that listens on it, once."""
    return await _handle(request, path, test=True)


@route(
    "/webhook-waiting/{execution_id:str}",
    http_method=["GET", "POST"],
    include_in_schema=False,
)
async def resume_webhook(request: Request[Any, Any, Any], execution_id: str) -> Response[Any]:
    """Resume a waiting execution now; the request item replaces the wait node's output."""
    state: ServerState = request.app.state.flowlite
    triggers = _triggers(state)
    headers = _headers(request)
    try:
        body = await _read_body(request, state.config.max_body_bytes)
        item = _item(request, f"webhook-waiting/{execution_id}", {}, headers, body)
    except _Refused as refused:
        return refused.response
    try:
        execution = await triggers.waits.resume(execution_id, [item])
    except NotWaiting as exc:
        return problem(409, exc.message, "not-waiting")
    return _json({"execution_id": execution.id, "status": "running"}, 200, {}, False)


# -- the API of triggers ---------------------------------------------------------------------
class TestListening(msgspec.Struct):
    workflow_id: str
    expires_at: str
    webhooks: list[dict[str, str]]


@get("/api/v1/workflows/{workflow_id:str}/triggers", tags=["workflows"])
async def workflow_triggers(flowlite: ServerState, workflow_id: str) -> dict[str, Any]:
    """The registered triggers of a workflow: webhook URLs, and the next fire times and last
    slot of each schedule."""
    await get_workflow(flowlite.db, workflow_id)  # 404 for an unknown workflow
    return await _triggers(flowlite).describe(workflow_id)


@post("/api/v1/workflows/{workflow_id:str}/test-webhook", tags=["workflows"], status_code=201)
async def listen_for_test(
    flowlite: ServerState, workflow_id: str, request: Request[Any, Any, Any]
) -> TestListening:
    """Listen on the test URLs of the workflow's webhook nodes for one request. The body, when
    given, is the editor's draft (a workflow document) to run instead of the saved version."""
    detail = await get_workflow(flowlite.db, workflow_id)
    raw = await request.body()
    document = detail.document
    if raw.strip():
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise HTTPException(
                status_code=400, detail=f"the body is not valid JSON: {exc}"
            ) from None
    routes, expires = _triggers(flowlite).listen(workflow_id, detail.version, document)
    base = flowlite.config.public_url
    hooks = [
        {"node": r.node, "method": r.method, "url": f"{base}/webhook-test/{r.path}"} for r in routes
    ]
    stamp = dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(timespec="milliseconds")
    return TestListening(workflow_id, stamp[:-6] + "Z", hooks)


@delete("/api/v1/workflows/{workflow_id:str}/test-webhook", tags=["workflows"])
async def stop_test(flowlite: ServerState, workflow_id: str) -> None:
    """Stop listening on the workflow's test URLs."""
    _triggers(flowlite).stop_listening(workflow_id)


@get("/api/v1/queue", tags=["executions"])
async def queue_state(flowlite: ServerState) -> dict[str, Any]:
    """Production executions running and queued now, and the concurrency limits."""
    return _triggers(flowlite).queue.snapshot()


ROUTES = [
    production_webhook,
    test_webhook,
    resume_webhook,
    workflow_triggers,
    listen_for_test,
    stop_test,
    queue_state,
]
