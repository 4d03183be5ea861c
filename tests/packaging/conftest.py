"""Fixtures of the packaging tests: the one-file binary (built once per session), and a `serve`
process of any flowlite command."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
#: the flowlite command of the virtualenv running the tests
VENV_FLOWLITE = str(Path(sys.executable).with_name("flowlite"))
#: what the binary is built from: it is stale when one of these is newer
SOURCES = (ROOT / "flowlite", ROOT / "packaging", ROOT / "pyproject.toml")
#: a workflow running Python in the sandbox, then an expression node after it
CODE_WORKFLOW: dict[str, Any] = {
    "name": "code in the binary",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {
            "name": "Code",
            "type": "code",
            "parameters": {
                "code": "import math\nreturn [{'n': len(items), 'pi': round(math.pi, 4)}]"
            },
        },
        {"name": "Tag", "type": "set", "parameters": {"fields": {"tag": "{{ json.n * 2 }}"}}},
    ],
    "connections": [{"from": "Start", "to": "Code"}, {"from": "Code", "to": "Tag"}],
}


def newest_source() -> float:
    newest = 0.0
    for source in SOURCES:
        paths = [source] if source.is_file() else source.rglob("*")
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


@pytest.fixture(scope="session")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-file binary: dist/flowlite when it is newer than every source, else built once."""
    built = ROOT / "dist" / "flowlite"
    if built.is_file() and built.stat().st_mtime > newest_source():
        return built
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -e '.[dev]')")
    if shutil.which("objdump") is None:
        pytest.skip("PyInstaller needs objdump: install the Debian package binutils")
    out = tmp_path_factory.mktemp("binary")
    result = subprocess.run(
        [
            str(ROOT / "packaging" / "build-binary"),
            "--distpath",
            str(out),
            "--workpath",
            str(out / "work"),
        ],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "flowlite"


class Server:
    """`<command> serve` on a data directory, ready when the constructor returns."""

    def __init__(self, command: list[str], data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
        environment.update(env)
        started = time.monotonic()
        # a file, not a pipe: a pipe nobody reads fills up with access logs and blocks the server
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = data_dir.parent / f"serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                # its own process group: a one-file binary is two processes (the bootloader
                # and its child), and killing the first alone would orphan the second
                start_new_session=True,
            )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = started + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flowlite serve exited: {self.output()}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    self.ready_after = time.monotonic() - started
                    return
            except httpx.TransportError:
                time.sleep(0.02)
        raise AssertionError(f"flowlite serve did not become ready: {self.output()}")

    def output(self) -> str:
        """Stop the server if it still runs; what it printed."""
        self.client.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        return self.log.read_text("utf-8", "replace")

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM; whether the server shut down cleanly (uvicorn re-raises the signal after a
        graceful shutdown, so the exit status is -SIGTERM or 0)."""
        self.process.terminate()
        code = self.process.wait(timeout)
        output = self.output()
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in output

    def workflow(self, document: dict[str, Any]) -> str:
        response = self.client.post("/api/v1/workflows", json=document)
        assert response.status_code == 201, response.text
        workflow_id: str = response.json()["id"]
        return workflow_id

    def run(self, workflow_id: str, items: Any = None) -> dict[str, Any]:
        """A manual run, waited for; the execution as the API returns it."""
        response = self.client.post(
            f"/api/v1/workflows/{workflow_id}/run",
            params={"wait": "true"},
            json={"items": items} if items is not None else None,
        )
        assert response.status_code in (200, 201, 202), response.text
        execution_id = response.json()["id"]
        return self.execution(execution_id)

    def execution(self, execution_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            execution: dict[str, Any] = self.client.get(f"/api/v1/executions/{execution_id}").json()
            if execution["status"] not in ("new", "running") or time.monotonic() > deadline:
                return execution
            time.sleep(0.05)

    def workflow_count(self) -> int:
        total: int = self.client.get("/api/v1/workflows", params={"limit": 1}).json()["total"]
        return total

    def execution_ids(self) -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = self.client.get("/api/v1/executions", params=params).json()
            ids += [e["id"] for e in page["data"]]
            cursor = page["next_cursor"]
            if not cursor:
                return ids


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test started; killed at the end if still running."""
    started: list[Server] = []
    yield started
    for server in started:
        server.output()  # kills the server's process group if it still runs
