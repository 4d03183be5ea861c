"""Errors as RFC 9457 problem JSON: one handler turns every error the API can raise into
``{"type", "title", "status", "detail"}`` (plus ``problems`` for an invalid workflow) with the
content type ``application/problem+json``.

flowlite's own errors map by class (:class:`~flowlite.errors.NotFound` 404,
:class:`~flowlite.errors.WorkflowInvalid` 422 listing every problem, other user errors 400 or 422,
:class:`~flowlite.errors.InternalError` 500), Litestar's by status (404 unknown route, 405, 400
validation, 413 body too large); anything else is a 500 whose detail reveals no internals.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from flowlite.errors import FlowliteError, NotFound, UserError, WorkflowInvalid
from flowlite.runner import Unavailable
from flowlite.store import BadInput, Conflict, UnsupportedMediaType

__all__ = ["PROBLEM_JSON", "exception_handlers", "problem"]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(status: int, detail: str, kind: str | None = None, **extra: Any) -> Response[Any]:
    """A problem JSON response."""
    title = _TITLES.get(status, "Error")
    body = {
        "type": f"urn:flowlite:problem:{kind}" if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def _flowlite_error(request: Request[Any, Any, Any], exc: FlowliteError) -> Response[Any]:
    if isinstance(exc, WorkflowInvalid):
        problems = [{"location": p.location, "message": p.message} for p in exc.problems]
        count = len(problems)
        first = str(exc.problems[0]) if exc.problems else ""
        more = f" (and {count - 1} more)" if count > 1 else ""
        return problem(
            422,
            f"the workflow is invalid: {first}{more}",
            "workflow-invalid",
            problems=problems,
        )
    if isinstance(exc, NotFound):
        return problem(404, exc.message, "not-found")
    if isinstance(exc, Conflict):
        return problem(409, exc.message, "conflict")
    if isinstance(exc, UnsupportedMediaType):
        return problem(415, exc.message, "unsupported-media-type")
    if isinstance(exc, BadInput):
        return problem(400, exc.message, "bad-input")
    if isinstance(exc, Unavailable):
        return problem(503, exc.message, "unavailable")
    if isinstance(exc, UserError):
        return problem(422, exc.message, "unprocessable")
    log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return problem(500, exc.message, "internal")


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    details = []
    for entry in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(entry, dict):
            message = str(entry.get("message", ""))
            key = entry.get("key")
            source = entry.get("source")
            where = f"{source} parameter {key!r}: " if key and source else ""
            details.append(f"{where}{message}")
    detail = "; ".join(d for d in details if d) or str(exc.detail)
    return problem(400, detail, "bad-request")


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = str(exc.detail)
    if status == 404 and detail in ("Not Found", ""):
        detail = f"no route {request.url.path!r} (see /api-docs)"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path!r}"
    elif status == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        detail = f"the request body is larger than the {limit} bytes allowed"
    response = problem(status, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "flowlite failed while handling the request; the server log says why")


def exception_handlers() -> dict[Any, Any]:
    return {
        FlowliteError: _flowlite_error,
        ValidationException: _validation_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
