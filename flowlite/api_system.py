"""Health, readiness, version, and the API documentation page.

``/healthz`` answers as long as the process serves requests; ``/readyz`` also checks the database
(503 when it cannot be read). The OpenAPI schema is at ``/api-docs/openapi.json``; ``/api-docs``
is a small page linking to it (no script is loaded from a CDN).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from sqlalchemy import text

from flowlite import __version__
from flowlite.state import ServerState

__all__ = ["DocsPagePlugin", "JsonRenderPlugin", "healthz", "readyz", "version"]


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    database: str
    running_executions: int
    detail: str | None = None


class Version(msgspec.Struct):
    version: str
    database: str


@get("/healthz", tags=["system"])
async def healthz() -> Health:
    """The process is up."""
    return Health("ok")


@get("/readyz", tags=["system"])
async def readyz(flowlite: ServerState) -> Any:
    """The server can serve requests: the database answers."""
    from litestar import Response

    try:
        async with flowlite.db.read() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        body = Readiness(
            "unavailable", flowlite.db.dialect, flowlite.runner.running_count, str(exc)
        )
        return Response(body, status_code=503)
    return Readiness("ready", flowlite.db.dialect, flowlite.runner.running_count)


@get("/api/v1/version", tags=["system"])
async def version(flowlite: ServerState) -> Version:
    return Version(__version__, flowlite.db.dialect)


class DocsPagePlugin(OpenAPIRenderPlugin):
    """``/api-docs``: a plain page pointing at the schema (UIs would load scripts from a CDN)."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        url = self.get_openapi_json_route(request)
        title = openapi_schema.get("info", {}).get("title", "API")
        paths = "".join(
            f"<li><code>{method.upper()} {path}</code></li>"
            for path, operations in openapi_schema.get("paths", {}).items()
            for method in operations
            if method in ("get", "post", "put", "patch", "delete")
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>OpenAPI schema: <a href='{url}'>{url}</a></p>"
            f"<ul>{paths}</ul></body></html>"
        ).encode()
