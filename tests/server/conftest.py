"""Fixtures of the server tests: a real app over a SQLite file, a real Postgres server."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from flowlite.db import Database, open_database
from flowlite.migrations import migrate

LINEAR = {
    "name": "linear",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {"name": "Tag", "type": "set", "parameters": {"fields": {"tag": "x"}}},
    ],
    "connections": [{"from": "Start", "to": "Tag"}],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data", retention_interval=3600, sandbox_size=1, shutdown_timeout=5
    )


@pytest.fixture
async def client(config: Config) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(config)) as test_client:
        yield test_client


# -- Postgres -------------------------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway Postgres cluster for the session (skipped when Postgres is not installed)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("Postgres is not installed (scripts/test installs the `postgresql` package)")
    root = Path(tempfile.mkdtemp(prefix="flowlite-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                f"-p {port} -k {root} -h 127.0.0.1 -c fsync=off",
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database: a SQLite file, then a Postgres database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'flowlite.db'}"
    else:
        url = await new_pg_database(request)
    database = open_database(url)
    await migrate(database)
    try:
        yield database
    finally:
        await database.close()


async def new_pg_database(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database in the session's Postgres cluster."""
    url: str = request.getfixturevalue("postgres_url")
    import asyncpg

    name = f"t{os.getpid()}_{next(_counter)}"
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.rsplit("/", 1)[0] + f"/{name}"
