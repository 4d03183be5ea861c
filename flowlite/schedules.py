"""Schedule triggers on APScheduler: cron lines and intervals, timezones, a misfire policy, and
never a slot fired twice.

Each schedule trigger of an active workflow has a row in ``schedule_state`` holding the last
slot handled. Firing a slot moves it forward with a compare-and-set (``WHERE last_slot = <the
slot before>``) in the transaction that stores the slot's execution as ``queued``: a restart, a
save or a second process never fires a slot twice, and a slot whose execution is stored is
never lost (the queue runs it, also after a restart).

Which slots are due is computed here, from APScheduler's triggers and a clock that tests
replace; APScheduler's ``AsyncIOScheduler`` only wakes :meth:`Scheduler.run_due` at the fire
times. A slot handled more than ``schedule_grace_seconds`` late (the server was down) is
missed: the trigger's ``misfire`` policy ``skip`` drops missed slots, ``run_once`` runs one
execution for all of them (for the latest). Activating a workflow, or changing a trigger's
schedule, starts from the current time: only later slots fire.

Daylight saving time: a slot in the hour skipped in spring fires at the same offset after the
change (02:30 becomes 03:30). In the hour repeated in autumn, a cron line with fixed hours
fires once (at the first 02:30), one whose hour field is ``*`` fires at each real time.
Intervals count real elapsed time from 2000-01-01 00:00 in the trigger's timezone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete, insert, select, update

from flowlite.config import Config
from flowlite.db import Database
from flowlite.model import Workflow
from flowlite.nodes.triggers import cron_trigger_kwargs
from flowlite.queueing import ExecutionQueue, Job, queued_inputs, queued_row
from flowlite.record import Mode
from flowlite.tables import execution_data, executions, schedule_state

__all__ = ["Clock", "Schedule", "Scheduler", "plan_schedules", "utc_now"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

_EPOCH = dt.datetime(2000, 1, 1)
#: how far back :meth:`Schedule.latest` looks, step by step
_LOOKBACK = (1, 60, 3600, 86400, 32 * 86400, 400 * 86400, 5 * 366 * 86400)
_MICROSECOND = dt.timedelta(microseconds=1)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    """The stored form of a slot (ISO UTC with milliseconds), which sorts as text."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Schedule:
    """One schedule trigger of an active workflow."""

    workflow_id: str
    workflow_name: str
    version: int
    document: dict[str, Any]
    workflow: Workflow
    node: str
    trigger: BaseTrigger
    #: cron or interval and timezone, as stored in ``schedule_state.trigger``
    definition: str
    timezone: str
    misfire: str
    #: a cron line with fixed hours: the repeated autumn hour fires once
    fixed_hours: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.workflow_id, self.node

    def _repeated(self, slot: dt.datetime) -> bool:
        """The slot is the second occurrence of a wall time (autumn) and fires only once."""
        if not self.fixed_hours:
            return False
        local = slot.astimezone(dt.UTC).astimezone(zoneinfo.ZoneInfo(self.timezone))
        return local.replace(fold=0).astimezone(dt.UTC) != local.astimezone(dt.UTC)

    def _from(self, moment: dt.datetime) -> dt.datetime | None:
        """The first slot at or after ``moment``, in UTC (APScheduler may return a wall time
        that does not exist, such as 02:30+01:00 on the spring change: normalized here)."""
        slot: dt.datetime | None = self.trigger.get_next_fire_time(None, moment)
        while slot is not None and self._repeated(slot):
            # in UTC: wall-clock arithmetic would step back into the first 02:30
            slot = self.trigger.get_next_fire_time(None, slot.astimezone(dt.UTC) + _MICROSECOND)
        return None if slot is None else slot.astimezone(dt.UTC)

    def after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first slot strictly after ``moment``."""
        return self._from(moment.astimezone(dt.UTC) + _MICROSECOND)

    def latest(self, now: dt.datetime, floor: dt.datetime) -> dt.datetime | None:
        """The latest slot in ``(floor, now]``."""
        for seconds in _LOOKBACK:
            start = max(now - dt.timedelta(seconds=seconds), floor + _MICROSECOND)
            slot = self._from(start)
            if slot is not None and slot <= now:
                while True:
                    following = self.after(slot)
                    if following is None or following > now:
                        return slot
                    slot = following
            if start > now - dt.timedelta(seconds=seconds):
                return None  # looked back to the floor already
        return None

    def upcoming(self, now: dt.datetime, count: int) -> list[dt.datetime]:
        """The next ``count`` slots from ``now``, in the trigger's timezone."""
        zone = zoneinfo.ZoneInfo(self.timezone)
        slots: list[dt.datetime] = []
        slot = self.after(now - _MICROSECOND)
        while slot is not None and len(slots) < count:
            slots.append(slot.astimezone(zone))
            slot = self.after(slot)
        return slots


def plan_schedules(
    workflow_id: str,
    version: int,
    document: dict[str, Any],
    workflow: Workflow,
    default_timezone: str,
) -> list[Schedule]:
    """The schedules of a (validated) workflow's enabled `schedule_trigger` nodes."""
    schedules = []
    for node in workflow.nodes:
        if node.type != "schedule_trigger" or node.disabled:
            continue
        params = node.parameters
        zone = params.get("timezone") or workflow.settings.timezone or default_timezone
        tzinfo = zoneinfo.ZoneInfo(zone)
        trigger: BaseTrigger
        fixed_hours = False
        if params.get("cron"):
            fields = cron_trigger_kwargs(str(params["cron"]))
            trigger = CronTrigger(**fields, timezone=tzinfo)
            fixed_hours = fields["hour"].strip() not in ("*", "*/1")
            spec: dict[str, Any] = {"cron": " ".join(str(params["cron"]).split())}
        else:
            every = {unit: int(n) for unit, n in dict(params.get("every") or {}).items() if n}
            trigger = IntervalTrigger(
                **every, start_date=_EPOCH.replace(tzinfo=tzinfo), timezone=tzinfo
            )
            spec = {"every": every}
        definition = json.dumps({**spec, "timezone": zone}, sort_keys=True)
        schedules.append(
            Schedule(
                workflow_id,
                workflow.name,
                version,
                document,
                workflow,
                node.name,
                trigger,
                definition,
                zone,
                str(params.get("misfire") or "skip"),
                fixed_hours,
            )
        )
    return schedules


class Scheduler:
    """Fires the schedule triggers of active workflows."""

    def __init__(
        self,
        config: Config,
        db: Database,
        queue: ExecutionQueue,
        clock: Clock | None = None,
    ) -> None:
        self.grace = dt.timedelta(seconds=config.schedule_grace_seconds)
        self.db = db
        self.queue = queue
        #: a test clock means no timers: the test calls run_due()
        self.clock: Clock = clock or utc_now
        self._timers = AsyncIOScheduler(timezone=dt.UTC) if clock is None else None
        self._schedules: dict[tuple[str, str], Schedule] = {}
        self._lock = asyncio.Lock()

    def start(self) -> None:
        if self._timers is not None:
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            self._timers.start()

    async def stop(self) -> None:
        if self._timers is not None and self._timers.running:
            self._timers.shutdown(wait=False)
        async with self._lock:  # let a slot being stored finish
            pass

    # -- registration -------------------------------------------------------------------
    async def replace(self, workflow_id: str, schedules: list[Schedule], *, fresh: bool) -> None:
        """Make ``schedules`` the workflow's schedules.

        ``fresh`` (the workflow was just activated): every trigger starts from now. Otherwise
        (a save, a restart) a trigger whose definition is unchanged keeps its last slot, so a
        save does not fire a slot again and a restart sees the slots it missed.
        """
        now = _stamp(self.clock())
        async with self.db.write() as connection:
            if fresh:
                await connection.execute(
                    delete(schedule_state).where(schedule_state.c.workflow_id == workflow_id)
                )
            rows = {
                node: (definition, last)
                for node, definition, last in (
                    await connection.execute(
                        select(
                            schedule_state.c.node,
                            schedule_state.c.trigger,
                            schedule_state.c.last_slot,
                        ).where(schedule_state.c.workflow_id == workflow_id)
                    )
                ).all()
            }
            where = schedule_state.c.workflow_id == workflow_id
            for schedule in schedules:
                row = rows.pop(schedule.node, None)
                if row is None:
                    await connection.execute(
                        insert(schedule_state).values(
                            workflow_id=workflow_id,
                            node=schedule.node,
                            trigger=schedule.definition,
                            last_slot=now,
                        )
                    )
                elif row[0] != schedule.definition:
                    await connection.execute(
                        update(schedule_state)
                        .where(where, schedule_state.c.node == schedule.node)
                        .values(trigger=schedule.definition, last_slot=max(row[1], now))
                    )
            if rows:
                await connection.execute(
                    delete(schedule_state).where(where, schedule_state.c.node.in_(list(rows)))
                )
        self._install(workflow_id, schedules)

    async def remove(self, workflow_id: str) -> None:
        """The workflow was deactivated or deleted: forget its schedules and their state."""
        self._install(workflow_id, [])
        async with self.db.write() as connection:
            await connection.execute(
                delete(schedule_state).where(schedule_state.c.workflow_id == workflow_id)
            )

    def _install(self, workflow_id: str, schedules: list[Schedule]) -> None:
        for key in [k for k in self._schedules if k[0] == workflow_id]:
            del self._schedules[key]
            if self._timers is not None and self._timers.get_job(_job_id(key)):
                self._timers.remove_job(_job_id(key))
        for schedule in schedules:
            self._schedules[schedule.key] = schedule
            if self._timers is not None:
                self._timers.add_job(
                    self.run_due,
                    trigger=schedule.trigger,
                    args=[schedule.key],
                    id=_job_id(schedule.key),
                    replace_existing=True,
                    misfire_grace_time=None,
                    coalesce=True,
                    max_instances=1,
                )

    def schedules(self, workflow_id: str) -> list[Schedule]:
        return [s for key, s in self._schedules.items() if key[0] == workflow_id]

    async def state(self, workflow_id: str) -> dict[str, str]:
        """The last slot handled per node."""
        async with self.db.read() as connection:
            rows = await connection.execute(
                select(schedule_state.c.node, schedule_state.c.last_slot).where(
                    schedule_state.c.workflow_id == workflow_id
                )
            )
            return {node: last for node, last in rows.all()}

    # -- firing -------------------------------------------------------------------------
    async def run_due(self, key: tuple[str, str] | None = None) -> int:
        """Fire the due slots of one schedule (``key``) or of all; returns executions started."""
        async with self._lock:
            now = self.clock()
            keys = [key] if key is not None else list(self._schedules)
            fired = 0
            for each in keys:
                schedule = self._schedules.get(each)
                if schedule is not None:
                    try:
                        fired += await self._run_one(schedule, now)
                    except Exception:
                        log.exception("schedule %r of workflow %s failed", each[1], each[0])
            return fired

    async def _run_one(self, schedule: Schedule, now: dt.datetime) -> int:
        async with self.db.read() as connection:
            last = (
                await connection.execute(
                    select(schedule_state.c.last_slot).where(
                        schedule_state.c.workflow_id == schedule.workflow_id,
                        schedule_state.c.node == schedule.node,
                    )
                )
            ).scalar()
        if last is None:
            return 0
        floor = _parse(last)
        first = schedule.after(floor)
        if first is None or first > now:
            return 0
        slot = schedule.latest(now, floor) or first
        on_time = now - slot <= self.grace
        missed = first < slot or not on_time
        fire = on_time or schedule.misfire == "run_once"
        if missed:
            log.info(
                "schedule %r of workflow %r missed slots up to %s: %s",
                schedule.node,
                schedule.workflow_name,
                slot.isoformat(),
                "running once" if fire else "skipped",
            )
        return await self._advance(schedule, last, slot, now, fire)

    async def _advance(
        self, schedule: Schedule, last: str, slot: dt.datetime, now: dt.datetime, fire: bool
    ) -> int:
        """Record ``slot`` as handled (if no one else did) and store its execution."""
        zone = zoneinfo.ZoneInfo(schedule.timezone)
        item = {
            "timestamp": now.astimezone(zone).isoformat(),
            "timezone": schedule.timezone,
            "scheduled_for": slot.astimezone(zone).isoformat(),
        }
        job = Job(
            schedule.workflow_id,
            schedule.workflow_name,
            schedule.version,
            schedule.document,
            Mode.SCHEDULE,
            [{"json": item}],
            schedule.node,
            workflow=schedule.workflow,
        )
        async with self.db.write() as connection:
            moved = await connection.execute(
                update(schedule_state)
                .where(
                    schedule_state.c.workflow_id == schedule.workflow_id,
                    schedule_state.c.node == schedule.node,
                    schedule_state.c.last_slot == last,
                )
                .values(last_slot=_stamp(slot))
            )
            if moved.rowcount != 1 or not fire:
                return 0
            await connection.execute(insert(executions).values(queued_row(job)))
            await connection.execute(
                insert(execution_data).values(
                    execution_id=job.id, inputs=queued_inputs(job), record=None, spilled=False
                )
            )
        await self.queue.submit(job, stored=True)
        return 1


def _job_id(key: tuple[str, str]) -> str:
    return json.dumps(list(key))
