"""Fixtures of the trigger tests: the real app over a SQLite file, restartable on the same data
directory, with a clock the schedule tests move by hand."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from tests.server.conftest import postgres_url  # noqa: F401 - the session's Postgres cluster

Client = AsyncTestClient[Any]
T = TypeVar("T")


class FakeClock:
    """The time of the schedules, moved by the test."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, moment: dt.datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        retention_interval=3600,
        sandbox_size=1,
        shutdown_timeout=5,
        wait_threshold_seconds=0.5,
    )


Serve = Callable[..., contextlib.AbstractAsyncContextManager[Client]]


@pytest.fixture
def serve(config: Config) -> Serve:
    """``async with serve(clock=..., **settings) as client``: the app over the test's data
    directory; leaving the block stops it, entering again restarts it."""

    @contextlib.asynccontextmanager
    async def running(clock: Any = None, **settings: Any) -> AsyncIterator[Client]:
        changed = Config(**{**config.__dict__, **settings})
        async with AsyncTestClient(create_app(changed, clock=clock)) as client:
            yield client

    return running


@pytest.fixture
async def client(serve: Serve) -> AsyncIterator[Client]:
    async with serve() as test_client:
        yield test_client


async def in_app(client: Client, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``function`` on the app's event loop (the test client runs the app in a thread)."""
    result: T = await asyncio.to_thread(client.blocking_portal.call, function, *args)
    return result


def server(client: Client) -> Any:
    """The app's :class:`~flowlite.state.ServerState` (use its coroutines through in_app)."""
    return client.app.state.flowlite


async def create(client: Client, document: dict[str, Any], *, active: bool = True) -> str:
    response = await client.post("/api/v1/workflows", json=document)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    if active:
        response = await client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
        assert response.status_code == 200, response.text
    return workflow_id


def webhook_flow(
    name: str = "hook",
    *,
    path: str = "orders",
    method: str = "POST",
    respond: str = "immediately",
    extra: list[dict[str, Any]] | None = None,
    hook: dict[str, Any] | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """A webhook node followed by ``extra`` nodes in a line."""
    nodes = [
        {
            "name": "Hook",
            "type": "webhook",
            "parameters": {"path": path, "method": method, "respond": respond, **parameters},
            **(hook or {}),
        },
        *(extra or []),
    ]
    names = [n["name"] for n in nodes]
    connections = [{"from": a, "to": b} for a, b in itertools.pairwise(names)]
    return {"name": name, "nodes": nodes, "connections": connections}


async def executions(client: Client, **query: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/executions", params={"limit": 500, **query})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def record(client: Client, execution_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def settle(client: Client, execution_id: str, timeout: float = 10) -> dict[str, Any]:
    """The execution's record once it has ended (success, error, canceled or crashed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        data = await record(client, execution_id)
        if data["status"] not in ("queued", "running", "waiting"):
            return data
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"execution {execution_id} still {data['status']}")
        await asyncio.sleep(0.02)
