"""Fixtures of the security tests: a real app over a SQLite file, a local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from tests.httpserver import TestServer


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data", retention_interval=3600, sandbox_size=1, shutdown_timeout=5
    )


@pytest.fixture
async def client(config: Config) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(config)) as test_client:
        yield test_client


@pytest.fixture
def http_server() -> Iterator[TestServer]:
    server = TestServer()
    server.start()
    yield server
    server.stop()
