"""Health, readiness, version and the API documentation."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from flowlite import __version__


async def test_health_readiness_version(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["database"] == "sqlite"
    assert (await client.get("/api/v1/version")).json() == {
        "version": __version__,
        "database": "sqlite",
    }


async def test_openapi_schema_and_page(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/api-docs/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "flowlite"
    for path in (
        "/api/v1/workflows",
        "/api/v1/workflows/{workflow_id}/versions/diff",
        "/api/v1/executions",
        "/api/v1/executions/{execution_id}/retry",
    ):
        assert path in schema["paths"], path
    body = schema["paths"]["/api/v1/workflows"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/yaml"}
    page = await client.get("/api-docs")
    assert page.status_code == 200 and "/api-docs/openapi.json" in page.text
    assert "<script" not in page.text  # nothing loaded from a CDN
