"""A real `flowlite serve` subprocess for tests, with its output in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import free_port

FLOWLITE = str(Path(sys.executable).with_name("flowlite"))


class Server:
    """One `flowlite serve` process on a data directory (a free port unless given)."""

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
        environment.update(env)
        # a file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it
        self.log = data_dir.parent / f"serve-{self.port}.log"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [FLOWLITE, "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flowlite serve exited: {self.output()}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.02)
        raise AssertionError("flowlite serve did not become ready")

    def output(self) -> str:
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        return self.log.read_text(encoding="utf-8", errors="replace")

    def workflow(self, document: dict[str, Any]) -> str:
        response = self.client.post("/api/v1/workflows", json=document)
        assert response.status_code == 201, response.text
        workflow_id: str = response.json()["id"]
        return workflow_id

    def run(self, workflow_id: str) -> str:
        response = self.client.post(f"/api/v1/workflows/{workflow_id}/run")
        assert response.status_code == 202, response.text
        execution_id: str = response.json()["id"]
        return execution_id

    def statuses(self) -> dict[str, str]:
        data = self.client.get("/api/v1/executions", params={"limit": 500}).json()["data"]
        return {e["id"]: e["status"] for e in data}
