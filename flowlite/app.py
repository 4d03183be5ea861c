"""The server: :func:`create_app` builds the Litestar application from a :class:`Config`.

Start-up (the lifespan): open the database, migrate it (one transaction; a schema newer than the
code refuses to start), mark executions a dead process left running as ``crashed``, start the
execution writer, the engine and retention (the sandbox pool starts with the first code node). Shut-down:
start no new execution, give running ones ``shutdown_timeout`` seconds (the rest are recorded as
``crashed``), commit every queued write, stop the sandbox, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from flowlite import __version__
from flowlite.activation import Triggers
from flowlite.api_audit import AuditController
from flowlite.api_credentials import CredentialController
from flowlite.api_executions import ExecutionController
from flowlite.api_system import DocsPagePlugin, JsonRenderPlugin, healthz, readyz, version
from flowlite.api_workflows import WorkflowController
from flowlite.config import Config
from flowlite.credentials import StoredCredentials
from flowlite.crypto import check_key
from flowlite.db import open_database
from flowlite.events import EventHub
from flowlite.migrations import migrate
from flowlite.problems import exception_handlers
from flowlite.queueing import recover_running
from flowlite.registry import Registry
from flowlite.retention import retention_loop
from flowlite.runner import Runner, env_credentials
from flowlite.schedules import Clock
from flowlite.sdk import Item
from flowlite.state import ServerState
from flowlite.web import htmx_plugin, template_config, web_route_handlers
from flowlite.webhooks import ROUTES as WEBHOOK_ROUTES
from flowlite.writer import ExecutionWriter

__all__ = ["SandboxRunner", "create_app", "start_server", "stop_server"]

log = logging.getLogger("flowlite.server")


class SandboxRunner:
    """The sandbox pool as the engine's code runner, started when a code node first needs it."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self._pool: Any = None
        self._starting: asyncio.Task[Any] | None = None

    def start_soon(self) -> None:
        self._starting = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> Any:
        sandbox: Any = importlib.import_module("flowlite.sandbox")
        pool = sandbox.SandboxPool(sandbox.SandboxConfig(**self.options))
        await pool.start()
        log.info("sandbox: %d worker(s), isolation %s", self.options["size"], pool.isolation)
        self._pool = pool
        return pool

    async def started(self) -> None:
        assert self._starting is not None
        await asyncio.shield(self._starting)

    async def __call__(
        self, code: str, mode: str, items: list[Item], *, timeout: float | None, allow_network: bool
    ) -> tuple[list[Item], list[str]]:
        if self._pool is None:
            if self._starting is None:
                self.start_soon()
            assert self._starting is not None
            await asyncio.shield(self._starting)
        result = await self._pool.run(
            code, mode, items, timeout=timeout, allow_network=allow_network
        )
        return list(result.items), list(result.logs)

    async def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._starting is not None:
            with contextlib.suppress(BaseException):
                await self._starting
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def start_server(
    config: Config, registry: Registry | None = None, *, clock: Clock | None = None
) -> ServerState:
    """Open, migrate and recover the database, and start what executions need; register the
    triggers of active workflows (``clock`` replaces the time of schedules, for tests)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(config.url)
    try:
        before, after = await migrate(db)
        if before != after:
            log.info("database schema migrated from %s to %s", before or "empty", after)
        cipher = await check_key(db, config)  # a wrong key is refused before anything runs
        crashed = await recover_running(db)  # queued and waiting ones go on
        if crashed:
            log.warning(
                "%d execution(s) left running by a stopped process: marked crashed", len(crashed)
            )
    except BaseException:
        await db.close()
        raise
    writer = ExecutionWriter(db)
    writer.start()
    # workers start with the first code node, or now when namespaces are required (no bwrap:
    # the server refuses to start instead of failing later)
    sandbox = SandboxRunner(config.sandbox_options())
    if config.sandbox_isolation == "namespaces":
        try:
            sandbox.start_soon()
            await sandbox.started()
        except BaseException:
            await sandbox.close()
            await db.close()
            raise
    hub = EventHub()
    runner = Runner(config, db, registry or Registry.default(), writer, hub, code_runner=sandbox)
    state = ServerState(config, db, runner.engine.registry, hub, runner)
    # FLOWLITE_CREDENTIAL_<NAME> variables still answer for names the store does not hold
    state.credentials = StoredCredentials(db, cipher, config, fallback=env_credentials)
    runner.engine.credentials = state.credentials
    state.background = [asyncio.get_running_loop().create_task(retention_loop(config, db))]
    state.sandbox = sandbox
    state.triggers = Triggers(config, db, runner, clock)
    try:
        await state.triggers.start()
    except BaseException:
        await stop_server(state)
        raise
    return state


async def stop_server(state: ServerState) -> None:
    """Let running executions finish (up to the deadline), store everything, close."""
    try:
        if state.triggers is not None:
            await state.triggers.stop()
        await state.runner.shutdown(state.config.shutdown_timeout)
    finally:
        for task in state.background:
            task.cancel()
        await asyncio.gather(*state.background, return_exceptions=True)
        await state.runner.writer.close()
        if state.sandbox is not None:
            await state.sandbox.close()
        await state.db.close()


def _provide_state(state: State) -> ServerState:
    server: ServerState = state.flowlite
    return server


def create_app(
    config: Config, *, registry: Registry | None = None, clock: Clock | None = None
) -> Litestar:
    """The Litestar application serving the API under ``/api/v1`` and webhooks under
    ``/webhook``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        server = await start_server(config, registry, clock=clock)
        app.state.flowlite = server
        try:
            yield
        finally:
            await stop_server(server)

    return Litestar(
        route_handlers=[
            WorkflowController,
            ExecutionController,
            CredentialController,
            AuditController,
            healthz,
            readyz,
            version,
            *web_route_handlers(),
            *WEBHOOK_ROUTES,
        ],
        lifespan=[lifespan],
        dependencies={"flowlite": Provide(_provide_state, sync_to_thread=False)},
        exception_handlers=exception_handlers(),
        openapi_config=OpenAPIConfig(
            title="flowlite",
            version=__version__,
            path="/api-docs",
            render_plugins=[DocsPagePlugin(), JsonRenderPlugin()],
        ),
        request_max_body_size=config.max_body_bytes,
        template_config=template_config(),
        plugins=[htmx_plugin()],
        debug=False,
    )
