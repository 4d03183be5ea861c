"""`flowlite serve` as a real subprocess: kill -9 during executions, graceful shutdown, live
events over HTTP, and a schemathesis run over the OpenAPI schema."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import LINEAR
from tests.serving import Server

FLOWLITE = str(Path(sys.executable).with_name("flowlite"))


def waiting(seconds: float) -> dict[str, Any]:
    return {
        "name": f"wait {seconds}",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {"name": "Wait", "type": "wait", "parameters": {"seconds": seconds}},
        ],
        "connections": [{"from": "Start", "to": "Wait"}],
    }


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.output()


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_during_executions_then_restart(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "data"
    server = Server(data)
    servers.append(server)
    workflow_id = server.workflow(waiting(20))
    quick = server.workflow(LINEAR)
    done = server.client.post(f"/api/v1/workflows/{quick}/run", params={"wait": "true"}).json()
    ids = [server.run(workflow_id) for _ in range(5)]
    wait_for(lambda: all(server.statuses().get(i) == "running" for i in ids))
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    server.output()

    restarted = Server(data)
    servers.append(restarted)
    statuses = restarted.statuses()
    assert {statuses[i] for i in ids} == {"crashed"}
    assert statuses[done["id"]] == "success"
    record = restarted.client.get(f"/api/v1/executions/{ids[0]}").json()
    assert record["status"] == "crashed" and record["finished_at"]
    assert record["error"]["message"] == "the process running it stopped"
    again = restarted.client.post(f"/api/v1/workflows/{quick}/run", params={"wait": "true"})
    assert again.json()["status"] == "success"
    restarted.process.send_signal(signal.SIGTERM)
    restarted.process.wait(30)
    connection = sqlite3.connect(data / "flowlite.db")
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    count = connection.execute("SELECT count(*) FROM executions").fetchone()[0]
    connection.close()
    assert count == 7


def test_graceful_shutdown_lets_runs_finish_or_records_them(
    tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "data"
    server = Server(data, FLOWLITE_SHUTDOWN_TIMEOUT="3")
    servers.append(server)
    short = server.run(server.workflow(waiting(1)))
    long = server.run(server.workflow(waiting(60)))
    wait_for(lambda: server.statuses().get(long) == "running")
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    assert time.monotonic() - started < 15
    server.output()
    connection = sqlite3.connect(data / "flowlite.db")
    rows = dict(connection.execute("SELECT id, status FROM executions").fetchall())
    message = connection.execute(
        "SELECT error_message FROM executions WHERE id = ?", (long,)
    ).fetchone()[0]
    connection.close()
    assert rows == {short: "success", long: "crashed"}
    assert message == "the server stopped before the execution finished"


def test_events_of_every_execution_over_http(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path / "data")
    servers.append(server)
    workflow_id = server.workflow(LINEAR)
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{server.url}/api/v1/executions/events", timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        execution_id = server.run(workflow_id)
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["event"] == "execution_finished":
                    break
    assert [(e["event"], e.get("node")) for e in events] == [
        ("execution_started", None),
        ("node_started", "Start"),
        ("node_finished", "Start"),
        ("node_started", "Tag"),
        ("node_finished", "Tag"),
        ("execution_finished", None),
    ]
    assert events[0]["id"] == execution_id and events[-1]["status"] == "success"


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error(tmp_path: Path, servers: list[Server]) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    if not schemathesis.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    server = Server(tmp_path / "data", FLOWLITE_MAX_BODY_BYTES="1MB")
    servers.append(server)
    workflow_id = server.workflow(LINEAR)
    server.client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"})
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{server.url}/api-docs/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--exclude-path-regex",
            "/events$",
            "--generation-deterministic",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "Server error" not in result.stdout, report
