"""Schedules with a clock the test moves: slots, DST in Europe/Berlin, the misfire policies
across a restart, no double fire after a save, a restart or from a second process, and the
next fire times in the API."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from flowlite.model import workflow_from_dict
from flowlite.schedules import Scheduler, plan_schedules
from tests.triggers.conftest import (
    Client,
    FakeClock,
    Serve,
    create,
    executions,
    in_app,
    record,
    server,
)

UTC = dt.UTC


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def scheduled(
    name: str = "tick", *, timezone: str | None = None, misfire: str = "skip", **trigger: Any
) -> dict[str, Any]:
    parameters: dict[str, Any] = {**trigger, "misfire": misfire}
    if timezone:
        parameters["timezone"] = timezone
    return {
        "name": name,
        "nodes": [
            {"name": "Every", "type": "schedule_trigger", "parameters": parameters},
            {"name": "Tag", "type": "set", "parameters": {"fields": {"tag": "ran"}}},
        ],
        "connections": [{"from": "Every", "to": "Tag"}],
    }


def slots_of(document: dict[str, Any], start: dt.datetime, count: int) -> list[str]:
    workflow = workflow_from_dict(document)
    (schedule,) = plan_schedules("w", 1, document, workflow, "UTC")
    return [s.astimezone(UTC).isoformat() for s in schedule.upcoming(start, count)]


async def run_due(client: Client) -> int:
    fired: int = await in_app(client, server(client).triggers.scheduler.run_due)
    await in_app(client, server(client).runner.writer.flush)
    return fired


async def fired_for(client: Client, workflow_id: str) -> list[str]:
    """``scheduled_for`` of each schedule execution of the workflow, oldest first."""
    found = []
    for summary in reversed(await executions(client, workflow_id=workflow_id, mode="schedule")):
        for _ in range(200):
            data = await record(client, summary["id"])
            if data["status"] == "success":
                break
            await asyncio.sleep(0.01)
        item = data["nodes"]["Every"]["runs"][0]["outputs"]["main"][0]["json"]
        assert data["nodes"]["Tag"]["runs"][0]["outputs"]["main"][0]["json"]["tag"] == "ran"
        found.append(item["scheduled_for"])
    return found


# -- slot arithmetic -----------------------------------------------------------------------
def test_spring_forward_berlin_runs_the_skipped_slot_an_hour_later() -> None:
    document = scheduled(cron="30 2 * * *", timezone="Europe/Berlin")
    assert slots_of(document, at(2026, 3, 28, 12), 3) == [
        "2026-03-29T01:30:00+00:00",  # 03:30 CEST: 02:30 does not exist that night
        "2026-03-30T00:30:00+00:00",  # 02:30 CEST
        "2026-03-31T00:30:00+00:00",
    ]


def test_fall_back_berlin_runs_fixed_hours_once_and_every_hour_twice() -> None:
    daily = scheduled(cron="30 2 * * *", timezone="Europe/Berlin")
    assert slots_of(daily, at(2026, 10, 24, 12), 3) == [
        "2026-10-25T00:30:00+00:00",  # the first 02:30 (CEST); not again at 02:30 CET
        "2026-10-26T01:30:00+00:00",
        "2026-10-27T01:30:00+00:00",
    ]
    half_hourly = scheduled(cron="*/30 * * * *", timezone="Europe/Berlin")
    assert slots_of(half_hourly, at(2026, 10, 24, 23, 50), 5) == [
        "2026-10-25T00:00:00+00:00",  # 02:00 CEST
        "2026-10-25T00:30:00+00:00",  # 02:30 CEST
        "2026-10-25T01:00:00+00:00",  # 02:00 CET: a real hour later
        "2026-10-25T01:30:00+00:00",  # 02:30 CET
        "2026-10-25T02:00:00+00:00",  # 03:00 CET
    ]


def test_six_field_cron_and_intervals_aligned_to_the_timezone() -> None:
    assert slots_of(scheduled(cron="*/20 * * * * *"), at(2026, 1, 1, 0, 0, 5), 3) == [
        "2026-01-01T00:00:20+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:00+00:00",
    ]
    every = scheduled(every={"minutes": 15}, timezone="Asia/Kolkata")  # UTC+05:30
    assert slots_of(every, at(2026, 1, 1, 0, 7), 2) == [
        "2026-01-01T00:15:00+00:00",
        "2026-01-01T00:30:00+00:00",
    ]
    hourly = scheduled(every={"hours": 1}, timezone="Asia/Kolkata")
    assert slots_of(hourly, at(2026, 1, 1, 0, 7), 1) == ["2026-01-01T00:30:00+00:00"]


def test_the_workflow_timezone_is_the_default() -> None:
    document = scheduled(cron="0 9 * * *")
    document["settings"] = {"timezone": "America/New_York"}
    assert slots_of(document, at(2026, 7, 1), 1) == ["2026-07-01T13:00:00+00:00"]


# -- firing ------------------------------------------------------------------------------------
async def test_each_slot_fires_once_with_its_item(serve: Serve) -> None:
    clock = FakeClock(at(2026, 6, 1, 10, 0, 30))
    async with serve(clock=clock) as client:
        workflow_id = await create(client, scheduled(cron="* * * * *", timezone="Europe/Berlin"))
        assert await run_due(client) == 0  # activated at 10:00:30: the 10:00 slot is past
        clock.set(at(2026, 6, 1, 10, 1, 0, 200000))
        assert await run_due(client) == 1
        assert await run_due(client) == 0
        clock.advance(seconds=59)
        assert await run_due(client) == 0
        clock.advance(seconds=1)
        assert await run_due(client) == 1
        assert await fired_for(client, workflow_id) == [
            "2026-06-01T12:01:00+02:00",
            "2026-06-01T12:02:00+02:00",
        ]
        (summary, _) = await executions(client, workflow_id=workflow_id)
        data = await record(client, summary["id"])
        item = data["nodes"]["Every"]["runs"][0]["outputs"]["main"][0]["json"]
        assert item["timezone"] == "Europe/Berlin"
        assert item["timestamp"] == "2026-06-01T12:02:00.200000+02:00"


async def test_dst_spring_forward_fires_at_0330(serve: Serve) -> None:
    clock = FakeClock(at(2026, 3, 28, 12))
    async with serve(clock=clock) as client:
        workflow_id = await create(client, scheduled(cron="30 2 * * *", timezone="Europe/Berlin"))
        clock.set(at(2026, 3, 29, 1, 0))  # 03:00 CEST: nothing yet
        assert await run_due(client) == 0
        clock.set(at(2026, 3, 29, 1, 30, 1))  # 03:30 CEST
        assert await run_due(client) == 1
        assert await fired_for(client, workflow_id) == ["2026-03-29T03:30:00+02:00"]


async def test_dst_fall_back_fires_a_fixed_time_once(serve: Serve) -> None:
    clock = FakeClock(at(2026, 10, 24, 12))
    async with serve(clock=clock) as client:
        daily = await create(
            client, scheduled("daily", cron="30 2 * * *", timezone="Europe/Berlin")
        )
        half = await create(
            client, scheduled("half", cron="*/30 * * * *", timezone="Europe/Berlin")
        )
        for minute in range(0, 150, 15):  # 00:00 to 02:15 UTC every quarter hour
            clock.set(at(2026, 10, 25) + dt.timedelta(minutes=minute, seconds=1))
            await run_due(client)
        assert await fired_for(client, daily) == ["2026-10-25T02:30:00+02:00"]
        assert await fired_for(client, half) == [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ]


async def test_missed_slots_during_downtime_follow_the_misfire_policy(serve: Serve) -> None:
    clock = FakeClock(at(2026, 6, 1, 10, 0, 30))
    async with serve(clock=clock) as client:
        skip = await create(client, scheduled("skip", cron="0 * * * *", misfire="skip"))
        once = await create(client, scheduled("once", cron="0 * * * *", misfire="run_once"))
    clock.set(at(2026, 6, 1, 13, 10))  # down while 11:00, 12:00 and 13:00 passed
    async with serve(clock=clock) as client:  # the start handles missed slots
        await in_app(client, server(client).runner.writer.flush)
        assert await fired_for(client, skip) == []
        assert await fired_for(client, once) == ["2026-06-01T13:00:00+00:00"]  # once, the latest
        assert await run_due(client) == 0
        clock.set(at(2026, 6, 1, 14, 0, 1))
        assert await run_due(client) == 2
        assert await fired_for(client, skip) == ["2026-06-01T14:00:00+00:00"]
        triggers = (await client.get(f"/api/v1/workflows/{skip}/triggers")).json()
        assert triggers["schedules"][0]["last_slot"] == "2026-06-01T14:00:00.000Z"


async def test_a_short_downtime_within_the_grace_loses_no_slot(serve: Serve) -> None:
    clock = FakeClock(at(2026, 6, 1, 10, 59, 50))
    async with serve(clock=clock) as client:
        skip = await create(client, scheduled("skip", cron="0 * * * *", misfire="skip"))
    clock.set(at(2026, 6, 1, 11, 0, 20))  # restarted 20 s after the slot (grace: 30 s)
    async with serve(clock=clock) as client:
        await in_app(client, server(client).runner.writer.flush)
        assert await fired_for(client, skip) == ["2026-06-01T11:00:00+00:00"]


async def test_no_double_fire_after_save_restart_or_a_second_process(serve: Serve) -> None:
    clock = FakeClock(at(2026, 6, 1, 10, 0, 30))
    document = scheduled(cron="* * * * *")
    async with serve(clock=clock) as client:
        workflow_id = await create(client, document)
        clock.set(at(2026, 6, 1, 10, 1, 0, 500000))
        assert await run_due(client) == 1
        # saving the same schedule (or another node) changes nothing
        document["nodes"][1]["parameters"]["fields"]["tag"] = "ran"
        response = await client.put(f"/api/v1/workflows/{workflow_id}", json=document)
        assert response.status_code == 200
        assert await run_due(client) == 0
        # deactivating and activating again starts from now
        await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": False})
        await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
        assert await run_due(client) == 0
    async with serve(clock=clock) as client:
        assert await run_due(client) == 0
        assert len(await fired_for(client, workflow_id)) == 1
        # two processes sharing the database: the slot is claimed once
        state = server(client)

        async def both() -> list[int]:
            other = Scheduler(state.config, state.db, state.triggers.queue, clock)
            mine = state.triggers.scheduler
            await other.replace(workflow_id, mine.schedules(workflow_id), fresh=False)
            clock.set(at(2026, 6, 1, 10, 2, 0, 100000))
            return list(await asyncio.gather(mine.run_due(), other.run_due()))

        assert sorted(await in_app(client, both)) == [0, 1]
        assert len(await fired_for(client, workflow_id)) == 2


async def test_a_changed_schedule_starts_from_now(serve: Serve) -> None:
    clock = FakeClock(at(2026, 6, 1, 10, 0, 30))
    async with serve(clock=clock) as client:
        workflow_id = await create(client, scheduled(cron="0 * * * *", misfire="run_once"))
        clock.set(at(2026, 6, 1, 12, 30))  # 11:00 and 12:00 were missed
        response = await client.put(
            f"/api/v1/workflows/{workflow_id}",
            json=scheduled(cron="45 * * * *", misfire="run_once"),
        )
        assert response.status_code == 200
        assert await run_due(client) == 0  # the old schedule's missed slots are not run
        clock.set(at(2026, 6, 1, 12, 45, 1))
        assert await run_due(client) == 1


async def test_next_fire_times_in_the_api(serve: Serve) -> None:
    clock = FakeClock(at(2026, 3, 28, 12))
    async with serve(clock=clock) as client:
        workflow_id = await create(client, scheduled(cron="30 2 * * *", timezone="Europe/Berlin"))
        response = await client.get(f"/api/v1/workflows/{workflow_id}/triggers")
        (schedule,) = response.json()["schedules"]
        assert schedule["node"] == "Every" and schedule["misfire"] == "skip"
        assert schedule["timezone"] == "Europe/Berlin"
        assert schedule["next_fire_times"][:2] == [
            "2026-03-29T03:30:00+02:00",
            "2026-03-30T02:30:00+02:00",
        ]
        assert schedule["last_slot"] == "2026-03-28T12:00:00.000Z"
        await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": False})
        response = await client.get(f"/api/v1/workflows/{workflow_id}/triggers")
        assert response.json()["schedules"] == [] and response.json()["active"] is False
        assert (await client.get("/api/v1/workflows/nope/triggers")).status_code == 404


async def test_real_timers_fire_a_six_field_cron(serve: Serve) -> None:
    async with serve() as client:  # the real clock: APScheduler wakes the scheduler
        workflow_id = await create(client, scheduled(cron="* * * * * *"))
        for _ in range(300):
            if len(await executions(client, workflow_id=workflow_id)) >= 2:
                break
            await asyncio.sleep(0.02)
        await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": False})
        fired = await fired_for(client, workflow_id)
        assert len(fired) >= 2 and len(set(fired)) == len(fired)  # one execution per second
