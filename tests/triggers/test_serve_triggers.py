"""`flowlite serve` as a real subprocess: a restart under webhook load answers no 404 for an
active path, a kill -9 right after answered webhooks loses none of their executions (a queued
one runs after the restart), and a chunked body is limited while it is read."""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import free_port
from tests.serving import Server
from tests.triggers.conftest import webhook_flow

FLOWLITE = str(Path(sys.executable).with_name("flowlite"))


class Serve(Server):
    """A `flowlite serve` on a given port (restarts reuse it) that can activate workflows."""

    def __init__(self, data_dir: Path, port: int, **env: str) -> None:
        super().__init__(data_dir, port, **{**env, "FLOWLITE_LOG_LEVEL": "warning"})

    def activate(self, document: dict[str, Any]) -> str:
        response = self.client.post("/api/v1/workflows", json=document)
        assert response.status_code == 201, response.text
        workflow_id: str = response.json()["id"]
        response = self.client.patch(f"/api/v1/workflows/{workflow_id}", json={"active": True})
        assert response.status_code == 200, response.text
        return workflow_id

    def stop(self, sig: int = signal.SIGTERM) -> str:
        self.process.send_signal(sig)
        self.process.wait(30)
        return self.output()


@pytest.fixture
def started() -> Iterator[list[Serve]]:
    servers: list[Serve] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.output()


def statuses(data_dir: Path) -> dict[str, str]:
    connection = sqlite3.connect(data_dir / "flowlite.db")
    try:
        return dict(connection.execute("SELECT id, status FROM executions").fetchall())
    finally:
        connection.close()


def test_a_restart_under_webhook_load_answers_no_404(tmp_path: Path, started: list[Serve]) -> None:
    data, port = tmp_path / "data", free_port()
    server = Serve(data, port)
    started.append(server)
    server.activate(webhook_flow(path="load/:id"))
    answers: Counter[int] = Counter()
    answered: list[str] = []
    failures: Counter[str] = Counter()
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = client.post(f"/webhook/load/{worker}-{n}", json={"n": n})
                except httpx.TransportError as exc:  # the server is down: try again
                    failures[type(exc).__name__] += 1
                    time.sleep(0.01)
                    continue
                answers[response.status_code] += 1
                if response.status_code == 200:
                    answered.append(response.json()["execution_id"])

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        before = answers[200]
        server.stop()
        restarted = Serve(data, port)
        started.append(restarted)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert answers[404] == 0, answers
    assert set(answers) == {200}, answers  # no other status either, only refused connections
    assert before > 20 and answers[200] > before + 20, (before, answers)
    restarted.stop()
    stored = statuses(data)
    assert all(stored.get(i) == "success" for i in answered), Counter(
        stored.get(i, "missing") for i in answered
    )


def test_kill_9_after_answers_keeps_their_executions(tmp_path: Path, started: list[Serve]) -> None:
    data, port = tmp_path / "data", free_port()
    settings = {"FLOWLITE_CONCURRENCY_LIMIT": "1", "FLOWLITE_WAIT_THRESHOLD_SECONDS": "60"}
    server = Serve(data, port, **settings)
    started.append(server)
    hold = {"name": "Hold", "type": "wait", "parameters": {"seconds": 30}}
    server.activate(webhook_flow(path="slow", extra=[hold]))
    server.activate(webhook_flow("quick", path="quick"))
    running = server.client.post("/webhook/slow", json={}).json()["execution_id"]
    queued = [
        server.client.post("/webhook/quick", json={"n": n}).json()["execution_id"]
        for n in range(20)
    ]
    server.stop(signal.SIGKILL)  # right after the answers
    stored = statuses(data)
    assert set(queued) <= set(stored) and running in stored  # every answered one is stored
    assert {stored[i] for i in queued} == {"queued"}

    restarted = Serve(data, port, **settings)
    started.append(restarted)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = restarted.client.get("/api/v1/executions", params={"limit": 100}).json()
        by_id = {e["id"]: e["status"] for e in current["data"]}
        if all(by_id.get(i) == "success" for i in queued):
            break
        time.sleep(0.05)
    assert by_id[running] == "crashed"  # it was running when the process died
    assert all(by_id[i] == "success" for i in queued), by_id
    record = restarted.client.get(f"/api/v1/executions/{queued[-1]}").json()
    assert record["nodes"]["Hook"]["runs"][0]["outputs"]["main"][0]["json"]["body"] == {"n": 19}
    restarted.stop()


def test_a_chunked_body_is_limited_while_read(tmp_path: Path, started: list[Serve]) -> None:
    server = Serve(tmp_path / "data", free_port())
    started.append(server)
    server.activate(webhook_flow(respond="last_node", max_body_bytes=100))

    def chunks(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield b"y" * 50

    small = server.client.post("/webhook/orders", content=chunks(2))
    assert small.status_code == 200
    assert small.request.headers["transfer-encoding"] == "chunked"  # no Content-Length
    large = server.client.post("/webhook/orders", content=chunks(5))
    assert large.status_code == 413, large.text
    server.stop()
