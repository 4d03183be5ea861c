"""The trigger paths that differ by database, on Postgres: the replay guard's insert, the
schedule's compare-and-set, the queue's and the waits' claims (skipped without Postgres)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from flowlite.webhooks import sign
from tests.server.conftest import new_pg_database
from tests.triggers.conftest import FakeClock, Serve, create, in_app, record, server, settle
from tests.triggers.conftest import webhook_flow as hook
from tests.triggers.test_schedules import fired_for, run_due, scheduled
from tests.triggers.test_waits import status_becomes, waiting


async def test_triggers_on_postgres(
    serve: Serve, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await new_pg_database(request)
    monkeypatch.setenv("FLOWLITE_CREDENTIAL_SIGNING", json.dumps({"secret": "k"}))
    clock = FakeClock(dt.datetime(2026, 6, 1, 10, 0, 30, tzinfo=dt.UTC))
    settings = {"database_url": url, "concurrency_limit": 1, "wait_threshold_seconds": 0.5}
    async with serve(clock=clock, **settings) as client:
        # the replay guard
        signed = hook(
            "signed", path="signed", auth="hmac", hook={"credentials": {"auth": "signing"}}
        )
        await create(client, signed)
        stamp = int(time.time())
        headers = {
            "X-Flowlite-Timestamp": str(stamp),
            "X-Flowlite-Signature": sign("k", stamp, b"{}"),
            "Content-Type": "application/json",
        }
        assert (
            await client.post("/webhook/signed", content=b"{}", headers=headers)
        ).status_code == 200
        replay = await client.post("/webhook/signed", content=b"{}", headers=headers)
        assert replay.status_code == 401
        # a schedule slot, once
        workflow_id = await create(client, scheduled(cron="* * * * *"))
        clock.set(dt.datetime(2026, 6, 1, 10, 1, 0, 100000, tzinfo=dt.UTC))
        assert await run_due(client) == 1
        assert await run_due(client) == 0
        assert len(await fired_for(client, workflow_id)) == 1
        # a parked wait resumed once by two racing resumes
        await create(client, waiting(3600, path="wait"))
        execution_id = (await client.post("/webhook/wait")).json()["execution_id"]
        await status_becomes(client, execution_id, "waiting")
        waits = server(client).triggers.waits

        async def twice() -> list[object]:
            return list(
                await asyncio.gather(
                    waits.resume(execution_id), waits.resume(execution_id), return_exceptions=True
                )
            )

        results = await in_app(client, twice)
        assert sum(isinstance(r, Exception) for r in results) == 1
        assert (await settle(client, execution_id))["status"] == "success"
        assert (await record(client, execution_id))["nodes"]["After"]["runs"][0][
            "status"
        ] == "success"
