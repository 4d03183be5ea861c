"""The browser editor: HTML pages and htmx fragments over the same store and runner as the API.

A full page extends ``base.html`` and includes its fragments; an htmx request for the same URL gets
only the fragment (see :func:`flowlite.web.common.page_or_fragment`). The JSON API under
``/api/v1`` stays separate: the editor's scripts call it for documents and execution records, and
the routes here render HTML (plus the few editor-only JSON endpoints under ``/editor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.plugins.htmx import HTMXConfig, HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from flowlite.web.common import STATIC_DIR, environment
from flowlite.web.editor import EditorController
from flowlite.web.executions import ExecutionPages
from flowlite.web.pages import WorkflowPages, home

__all__ = ["environment", "htmx_plugin", "template_config", "web_route_handlers"]


def web_route_handlers() -> list[Any]:
    """The HTML pages, their fragments and the static files (``/static``)."""
    static = create_static_files_router(
        path="/static", directories=[Path(STATIC_DIR)], name="static", include_in_schema=False
    )
    return [home, WorkflowPages, EditorController, ExecutionPages, static]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja templates from ``flowlite/web/templates`` (autoescaped)."""
    env = environment()
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def htmx_plugin() -> HTMXPlugin:
    """Litestar's HTMX plugin; only the web controllers use :class:`HTMXRequest`."""
    return HTMXPlugin(HTMXConfig(set_request_class_globally=False))
