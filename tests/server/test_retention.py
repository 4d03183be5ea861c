"""Retention: old and surplus executions are pruned in batches, and SQLite gives the space back."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import text

from flowlite.app import create_app
from flowlite.config import Config
from flowlite.retention import prune
from tests.server.conftest import LINEAR


def pages(path: Path) -> tuple[int, int]:
    connection = sqlite3.connect(path)
    try:
        count = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        connection.close()
    return count, free


async def test_prune_keeps_the_newest_and_reclaims_space(config: Config) -> None:
    config = replace(config, retention_max_count=5, retention_days=0)
    big = [{"i": i, "text": secrets.token_hex(400)} for i in range(40)]  # does not compress
    async with AsyncTestClient(create_app(config)) as client:
        response = await client.post("/api/v1/workflows", json=LINEAR)
        workflow_id = response.json()["id"]
        ids = []
        for _ in range(60):
            run = await client.post(
                f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"}, json={"items": big}
            )
            ids.append(run.json()["id"])
        state: Any = client.app.state.flowlite
        database = config.data_dir / "flowlite.db"
        pages_before, _ = pages(database)
        deleted = await prune(config, state.db, batch=7, pause=0)
        assert deleted == 55
        listed = (await client.get("/api/v1/executions", params={"limit": 100})).json()["data"]
        assert [e["id"] for e in listed] == list(reversed(ids[-5:]))
        count, free = pages(database)
        assert free == 0  # every freed page went back to the file system
        assert pages_before > 500 and count < pages_before / 5
        assert database.stat().st_size <= count * 4096  # the file shrank (WAL checkpointed)
        assert await prune(config, state.db) == 0


async def test_prune_by_age_leaves_recent_runs(config: Config) -> None:
    config = replace(config, retention_days=1, retention_max_count=0)
    async with AsyncTestClient(create_app(config)) as client:
        workflow_id = (await client.post("/api/v1/workflows", json=LINEAR)).json()["id"]
        old = (
            await client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"})
        ).json()
        new = (
            await client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"})
        ).json()
        state: Any = client.app.state.flowlite
        async with state.db.write() as connection:
            await connection.execute(
                text(
                    "UPDATE executions SET started_at = '2020-01-01T00:00:00.000Z' WHERE id = :id"
                ),
                {"id": old["id"]},
            )
        assert await prune(config, state.db) == 1
        assert (await client.get(f"/api/v1/executions/{old['id']}")).status_code == 404
        assert (await client.get(f"/api/v1/executions/{new['id']}")).status_code == 200
