"""What the web controllers share: the Jinja environment, page-or-fragment rendering, HTML errors."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Template

from flowlite import __version__
from flowlite.errors import FlowliteError, NotFound, UserError, WorkflowInvalid
from flowlite.store import Conflict

__all__ = [
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "asset_version",
    "environment",
    "html_exception_handlers",
    "page_or_fragment",
    "pretty_json",
    "when",
]

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"

#: the JavaScript and CSS every page loads, in order (the benchmark sizes these)
ASSETS = ("vendor/htmx.min.js", "js/canvas.js", "js/editor.js", "css/app.css")


@functools.cache
def asset_version() -> str:
    """A short hash of the static files, appended to their URLs so browsers reload changed ones."""
    digest = hashlib.sha256(__version__.encode())
    for name in ASSETS:
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:10]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def when(text: str | None) -> str:
    """An ISO time as ``2026-11-21 10:00:05`` (UTC), for tables."""
    if not text:
        return ""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return value.strftime("%Y-%m-%d %H:%M:%S")


def duration(start: str | None, end: str | None) -> str:
    """How long between two ISO times, as ``1.2 s`` or ``35 ms``."""
    if not start or not end:
        return ""
    try:
        seconds = (
            dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
            - dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
        ).total_seconds()
    except ValueError:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def cell(value: Any) -> str:
    """A JSON value as table cell text: text as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def environment() -> Environment:
    """The Jinja environment of the web templates (also used by the template tests)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # `tojson` in <script type="application/json"> keeps the document's key order
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}
    env.filters.update(pretty_json=pretty_json, when=when, cell=cell)
    env.globals.update(asset_version=asset_version, version=__version__, duration=duration)
    return env


def page_or_fragment(
    request: HTMXRequest, page: str, fragment: str, context: dict[str, Any], **kwargs: Any
) -> Template:
    """The full page for a browser navigation, only the fragment for an htmx request."""
    wants_fragment = bool(request.htmx) and not request.htmx.boosted
    if wants_fragment and not request.htmx.history_restore_request:
        return HTMXTemplate(template_name=fragment, context=context, **kwargs)
    return Template(template_name=page, context=context, **kwargs)


def _error_page(request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
    htmx = request.headers.get("hx-request") == "true"
    return Template(
        template_name="partials/_error.html" if htmx else "error.html",
        context={"status": status, "message": message, "htmx": htmx},
        status_code=status,
        # htmx swaps only 2xx answers unless told: show the message where the fragment goes
        headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"} if htmx else None,
    )


def _flowlite_error(request: Request[Any, Any, Any], exc: FlowliteError) -> Response[Any]:
    if isinstance(exc, NotFound):
        return _error_page(request, 404, exc.message)
    if isinstance(exc, Conflict):
        return _error_page(request, 409, exc.message)
    if isinstance(exc, WorkflowInvalid):
        return _error_page(request, 422, "; ".join(str(p) for p in exc.problems))
    return _error_page(request, 400 if isinstance(exc, UserError) else 500, exc.message)


def html_exception_handlers() -> dict[Any, Any]:
    """flowlite's errors as an HTML page (or a flash message for htmx), not problem JSON."""
    return {FlowliteError: _flowlite_error}
