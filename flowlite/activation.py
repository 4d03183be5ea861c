"""The triggers of active workflows: the webhook route table and the schedules.

Activating a workflow registers its triggers, deactivating or deleting it removes them, and
saving a new version of an active workflow replaces them. :meth:`Triggers.change` does each
under one lock, in three steps: plan the new routes (a conflict, two active workflows claiming
the same method and path, refuses the change with a message naming the other workflow, and
nothing is stored), store the change, then swap the route table in one assignment, so that a
request always finds either the old routes or the new ones, never none. On start,
:meth:`Triggers.restore` registers every active workflow before the server reports ready.

Paths are matched segment by segment; a ``:name`` segment matches any one segment and is
passed to the workflow in ``params``. A literal segment wins over a parameter at the same
place (``orders/new`` before ``orders/:id``). Two routes conflict when they have the same
method and the same shape (``orders/:id`` and ``orders/:number`` do).

Test URLs (``/webhook-test/<path>``) are registered for one workflow's draft by
:meth:`Triggers.listen` and answer one request, within ``webhook_test_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select

from flowlite.config import Config
from flowlite.db import Database
from flowlite.errors import UserError
from flowlite.model import Workflow
from flowlite.queueing import ExecutionQueue
from flowlite.record import iso_now
from flowlite.runner import Runner
from flowlite.schedules import Clock, Scheduler, plan_schedules
from flowlite.store import Conflict, get_workflow, parse_workflow
from flowlite.tables import workflows
from flowlite.waits import Waits

__all__ = [
    "RouteTable",
    "TokenBucket",
    "Triggers",
    "WebhookOptions",
    "WebhookRoute",
    "change_workflow",
    "normalize_path",
    "plan_webhooks",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: how often workflows changed by another process are looked for
RECONCILE_SECONDS = 5.0


@dataclass(frozen=True)
class WebhookOptions:
    """A webhook node's parameters, read once when the route is registered."""

    respond: str = "immediately"
    response_code: int = 200
    response_data: str = "first_item"
    auth: str = "none"
    max_body_bytes: int = 16 * 1024 * 1024
    rate_limit: int = 0
    cors_origins: tuple[str, ...] = ()
    #: empty: the credential's ``name`` (a header_auth credential), else Authorization
    auth_header: str = ""
    hmac_header: str = "X-Flowlite-Signature"
    timestamp_header: str = "X-Flowlite-Timestamp"
    tolerance_seconds: int = 300

    @classmethod
    def of(cls, parameters: dict[str, Any]) -> WebhookOptions:
        values = {name: parameters[name] for name in cls.__dataclass_fields__ if name in parameters}
        if "cors_origins" in values:
            values["cors_origins"] = tuple(values["cors_origins"] or ())
        return cls(**{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class WebhookRoute:
    """One webhook node of an active workflow (or of a draft listening on a test URL)."""

    workflow_id: str
    workflow_name: str
    version: int
    document: dict[str, Any]
    workflow: Workflow
    node: str
    method: str
    path: str
    options: WebhookOptions
    #: the credential named in the node's ``auth`` slot
    credential: str | None
    #: keeps successful executions (an answer waits until its execution is stored)
    keeps: bool
    test: bool = False
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.path.split("/")))

    @property
    def shape(self) -> str:
        return "/".join(":" if s.startswith(":") else s for s in self.segments)

    @property
    def dynamic(self) -> bool:
        return any(s.startswith(":") for s in self.segments)

    def describe(self) -> str:
        return f"workflow {self.workflow_name!r} (id {self.workflow_id}), node {self.node!r}"


def normalize_path(path: str) -> str:
    return "/".join(part for part in path.strip().split("/") if part)


def plan_webhooks(
    workflow_id: str,
    version: int,
    document: dict[str, Any],
    workflow: Workflow,
    *,
    test: bool = False,
) -> list[WebhookRoute]:
    """The routes of a (validated) workflow's enabled `webhook` nodes."""
    save = workflow.settings.save
    keeps = save is None or save.success == "all"
    routes = []
    for node in workflow.nodes:
        if node.type != "webhook" or node.disabled:
            continue
        options = WebhookOptions.of(node.parameters)
        credential = node.credentials.get("auth")
        if options.auth != "none" and not credential:
            raise UserError(
                f"webhook node {node.name!r} uses auth {options.auth!r} but names no credential: "
                "set `credentials: {auth: <credential name>}` on the node"
            )
        routes.append(
            WebhookRoute(
                workflow_id,
                workflow.name,
                version,
                document,
                workflow,
                node.name,
                str(node.parameters.get("method") or "POST"),
                normalize_path(str(node.parameters.get("path", ""))),
                options,
                credential,
                keeps,
                test,
            )
        )
    return routes


class RouteTable:
    """An immutable table of webhook routes; building it detects conflicts."""

    def __init__(self, routes: list[WebhookRoute]) -> None:
        self.static: dict[tuple[str, str], WebhookRoute] = {}
        self.dynamic: dict[str, list[WebhookRoute]] = {}
        claimed: dict[tuple[str, str], WebhookRoute] = {}
        for route in routes:
            key = (route.method, route.shape)
            other = claimed.get(key)
            if other is not None:
                raise Conflict(
                    f"webhook {route.method} /{route.path} of {route.describe()} conflicts with "
                    f"{route.method} /{other.path} of {other.describe()}, which is active: "
                    "change one path or deactivate the other workflow"
                )
            claimed[key] = route
            if route.dynamic:
                self.dynamic.setdefault(route.method, []).append(route)
            else:
                self.static[(route.method, route.path)] = route
        for candidates in self.dynamic.values():
            # literal segments win: sort by where the parameters are
            candidates.sort(key=lambda r: tuple(s.startswith(":") for s in r.segments))
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[WebhookRoute, dict[str, str]] | None:
        route = self.static.get((method, path))
        if route is not None:
            return route, {}
        candidates = self.dynamic.get(method)
        if not candidates:
            return None
        parts = path.split("/")
        for route in candidates:
            if len(route.segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for segment, part in zip(route.segments, parts, strict=True):
                if segment.startswith(":"):
                    params[segment[1:]] = part
                elif segment != part:
                    break
            else:
                return route, params
        return None

    def methods(self, path: str) -> list[str]:
        """The methods some route accepts on ``path``."""
        return sorted({r.method for r in self.routes if self.match(r.method, path) is not None})


async def change_workflow(
    triggers: Triggers | None,
    workflow_id: str,
    action: Callable[[], Awaitable[T]],
    *,
    document: dict[str, Any] | None = None,
    active: bool | None = None,
) -> T:
    """:meth:`Triggers.change`, or just ``action`` where no triggers run."""
    if triggers is None:
        return await action()
    return await triggers.change(workflow_id, action, document=document, active=active)


class TokenBucket:
    """A per-webhook rate limit: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token: 0 when granted, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(float(self.per_minute), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class _Listener:
    routes: list[WebhookRoute]
    expires: float


class Triggers:
    """The triggers of every active workflow, the test listeners of drafts, and the parts
    that start production executions: the queue, the scheduler and the waits."""

    def __init__(self, config: Config, db: Database, runner: Runner, clock: Clock | None = None):
        self.config = config
        self.db = db
        self.registry = runner.engine.registry
        self.credentials = runner.engine.credentials
        self.queue = ExecutionQueue(config, db, runner)
        #: ``clock`` replaces the time for schedules (tests); waits use the real time
        self.scheduler = Scheduler(config, db, self.queue, clock)
        self.waits = Waits(config, db, runner)
        runner.engine.waiter = self.waits.waiter
        self._buckets: dict[tuple[bool, str, str, str], TokenBucket] = {}
        self.table = RouteTable([])
        self.tests = RouteTable([])
        self._routes: dict[str, list[WebhookRoute]] = {}
        self._listeners: dict[str, _Listener] = {}
        self._lock = asyncio.Lock()
        #: workflows whose triggers could not be registered on start, with the reason
        self.failed: dict[str, str] = {}
        #: the version registered per active workflow (or that failed to register)
        self._versions: dict[str, int] = {}
        self._reconciler: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register the active workflows, then start what fires them: queued executions run,
        missed schedule slots are handled (per their misfire policy), due waits resume."""
        await self.restore()
        await self.queue.restore()
        self.scheduler.start()
        await self.scheduler.run_due()
        self.waits.start()
        loop = asyncio.get_running_loop()
        self._reconciler = loop.create_task(self._reconcile_loop(), name="trigger-reconciler")

    async def stop(self) -> None:
        """Fire nothing more (queued and waiting executions stay in the database)."""
        if self._reconciler is not None:
            self._reconciler.cancel()
            await asyncio.gather(self._reconciler, return_exceptions=True)
        await self.scheduler.stop()
        await self.waits.stop()
        await self.queue.close()

    def bucket(self, route: WebhookRoute) -> TokenBucket:
        """The rate limit of a webhook (kept across saves of its workflow)."""
        key = (route.test, route.workflow_id, route.node, route.method)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.per_minute != route.options.rate_limit:
            bucket = self._buckets[key] = TokenBucket(route.options.rate_limit)
        return bucket

    def _plan(
        self, workflow_id: str, version: int, document: dict[str, Any]
    ) -> tuple[list[WebhookRoute], Any]:
        workflow = parse_workflow(document, self.registry)
        routes = plan_webhooks(workflow_id, version, document, workflow)
        schedules = plan_schedules(workflow_id, version, document, workflow, self.config.timezone)
        others = [r for key, rs in self._routes.items() if key != workflow_id for r in rs]
        return routes, (RouteTable(others + routes), schedules)

    async def change(
        self,
        workflow_id: str,
        action: Callable[[], Awaitable[T]],
        *,
        document: dict[str, Any] | None = None,
        active: bool | None = None,
    ) -> T:
        """Run ``action`` (a save, an activation, a deletion) and re-register the workflow's
        triggers to match the result, refusing a conflicting change before it is stored.

        ``document``: the version being saved; ``active``: the active flag being set.
        """
        async with self._lock:
            currently = workflow_id in self._routes
            becomes = currently if active is None else active
            if becomes:
                if document is None:
                    document = (await get_workflow(self.db, workflow_id)).document
                routes, _ = self._plan(workflow_id, 0, document)  # refuses before storing
                await self._check_credentials(routes)
            result = await action()
            await self._sync(workflow_id, fresh=becomes and not currently)
            return result

    async def _check_credentials(self, routes: list[WebhookRoute]) -> None:
        for route in routes:
            if route.credential is not None and self.credentials is not None:
                try:
                    await self.credentials(route.credential, workflow_id=route.workflow_id)
                except UserError as exc:
                    raise UserError(f"webhook node {route.node!r}: {exc.message}") from None

    async def _sync(self, workflow_id: str, *, fresh: bool) -> None:
        """Register the stored state of the workflow: its current version when active."""
        async with self.db.read() as connection:
            row = (
                await connection.execute(
                    select(workflows.c.active, workflows.c.version).where(
                        workflows.c.id == workflow_id
                    )
                )
            ).first()
        if row is None or not row.active:
            self._install(workflow_id, [])
            self._routes.pop(workflow_id, None)
            self._versions.pop(workflow_id, None)
            self.failed.pop(workflow_id, None)
            await self.scheduler.remove(workflow_id)
            return
        detail = await get_workflow(self.db, workflow_id)
        self._versions[workflow_id] = detail.version  # also when it fails: tried once
        try:
            routes, (table, schedules) = self._plan(workflow_id, detail.version, detail.document)
        except UserError as exc:
            self.failed[workflow_id] = exc.message
            raise
        self._routes[workflow_id] = routes
        self.table = table
        self.failed.pop(workflow_id, None)
        await self.scheduler.replace(workflow_id, schedules, fresh=fresh)

    def _install(self, workflow_id: str, routes: list[WebhookRoute]) -> None:
        others = [r for key, rs in self._routes.items() if key != workflow_id for r in rs]
        self.table = RouteTable(others + routes)

    async def restore(self) -> int:
        """Register every active workflow (on start); returns how many. A workflow whose
        triggers cannot be registered (a conflict) is skipped and listed in :attr:`failed`."""
        async with self.db.read() as connection:
            ids = list(
                (
                    await connection.execute(
                        select(workflows.c.id)
                        .where(workflows.c.active.is_(True))
                        .order_by(workflows.c.updated_at, workflows.c.id)
                    )
                ).scalars()
            )
        async with self._lock:
            for workflow_id in ids:
                with contextlib.suppress(UserError):  # listed in self.failed
                    await self._sync(workflow_id, fresh=False)
        return len(ids) - len(self.failed)

    async def reconcile(self) -> list[str]:
        """Register the workflows changed without this process (`flowlite import` next to
        the server, another server process on the same database); returns their ids."""
        async with self.db.read() as connection:
            rows = await connection.execute(
                select(workflows.c.id, workflows.c.version).where(workflows.c.active.is_(True))
            )
            stored = {workflow_id: version for workflow_id, version in rows.all()}
        changed = [
            workflow_id
            for workflow_id in sorted(set(stored) | set(self._versions))
            if stored.get(workflow_id) != self._versions.get(workflow_id)
        ]
        for workflow_id in changed:
            async with self._lock:
                with contextlib.suppress(UserError):
                    await self._sync(workflow_id, fresh=workflow_id not in self._routes)
        return changed

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            try:
                changed = await self.reconcile()
            except Exception:
                log.exception("re-registering changed workflows failed")
                continue
            if changed:
                log.info("triggers re-registered for workflows changed elsewhere: %s", changed)

    # -- test URLs ------------------------------------------------------------------------
    def listen(
        self, workflow_id: str, version: int, document: dict[str, Any]
    ) -> tuple[list[WebhookRoute], float]:
        """Listen on the test URLs of a draft's webhook nodes for one request; returns the
        routes and when they stop listening (a UNIX time)."""
        workflow = parse_workflow(document, self.registry)
        # the request, not pinned data, is the webhook node's output
        hooks = {node.name for node in workflow.nodes if node.type == "webhook"}
        workflow.pinned = {k: v for k, v in workflow.pinned.items() if k not in hooks}
        routes = plan_webhooks(workflow_id, version, document, workflow, test=True)
        if not routes:
            raise UserError("the workflow has no enabled webhook node to listen with")
        self._expire()
        others = [
            r for key, lis in self._listeners.items() if key != workflow_id for r in lis.routes
        ]
        self.tests = RouteTable(others + routes)
        expires = time.time() + self.config.webhook_test_seconds
        self._listeners[workflow_id] = _Listener(routes, expires)
        return routes, expires

    def stop_listening(self, workflow_id: str) -> bool:
        found = self._listeners.pop(workflow_id, None) is not None
        self.tests = RouteTable([r for lis in self._listeners.values() for r in lis.routes])
        return found

    def _expire(self) -> None:
        now = time.time()
        expired = [key for key, lis in self._listeners.items() if lis.expires <= now]
        for key in expired:
            self.stop_listening(key)

    def take_test(self, method: str, path: str) -> tuple[WebhookRoute, dict[str, str]] | None:
        """The test route matching a request, unregistered: a test URL answers once."""
        self._expire()
        found = self.tests.match(method, path)
        if found is not None:
            self.stop_listening(found[0].workflow_id)
        return found

    # -- what the API shows -------------------------------------------------------------
    async def describe(self, workflow_id: str, count: int = 5) -> dict[str, Any]:
        """The registered triggers of a workflow, with the next fire times of schedules."""
        base = self.config.public_url
        hooks = [
            {
                "node": r.node,
                "method": r.method,
                "path": r.path,
                "url": f"{base}/webhook/{r.path}",
                "respond": r.options.respond,
                "auth": r.options.auth,
            }
            for r in self._routes.get(workflow_id, [])
        ]
        last = await self.scheduler.state(workflow_id)
        now = self.scheduler.clock()
        schedules = [
            {
                "node": s.node,
                "timezone": s.timezone,
                "misfire": s.misfire,
                "last_slot": last.get(s.node),
                "next_fire_times": [t.isoformat() for t in s.upcoming(now, count)],
            }
            for s in self.scheduler.schedules(workflow_id)
        ]
        listener = self._listeners.get(workflow_id)
        tests = (
            [
                {"node": r.node, "method": r.method, "url": f"{base}/webhook-test/{r.path}"}
                for r in listener.routes
            ]
            if listener is not None and listener.expires > time.time()
            else []
        )
        return {
            "workflow_id": workflow_id,
            "active": workflow_id in self._routes,
            "webhooks": hooks,
            "schedules": schedules,
            "test_webhooks": tests,
            "problem": self.failed.get(workflow_id),
            "checked_at": iso_now(),
        }

    def active(self, workflow_id: str) -> bool:
        return workflow_id in self._routes
