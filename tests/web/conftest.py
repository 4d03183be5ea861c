"""Fixtures of the web tests: the real app over AsyncTestClient, and for the browser tests a real
`flowlite serve` subprocess driven by headless Chromium (Debian's /usr/bin/chromium through
Playwright's Python package; `scripts/test` installs both)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from flowlite.app import create_app
from flowlite.config import Config
from tests.server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
FLOWLITE = str(Path(sys.executable).with_name("flowlite"))

ORDERS = {
    "name": "Order alerts",
    "tags": ["orders"],
    "nodes": [
        {"name": "Incoming", "type": "webhook", "parameters": {"path": "orders"}},
        {"name": "Big?", "type": "if", "parameters": {"condition": "{{ json.body.total > 100 }}"}},
        {"name": "Tag", "type": "set", "parameters": {"fields": {"priority": "high"}}},
    ],
    "connections": [
        {"from": "Incoming", "to": "Big?"},
        {"from": "Big?", "output": "true", "to": "Tag"},
    ],
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data", retention_interval=3600, sandbox_size=1, shutdown_timeout=5
    )


@pytest.fixture
async def client(config: Config) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(config)) as test_client:
        yield test_client


class LiveServer:
    """`flowlite serve` on a free port with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
        self.process = subprocess.Popen(
            [FLOWLITE, "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("flowlite serve exited before it was ready")
            try:
                if self.http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("flowlite serve did not become ready")

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("web") / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium; skipped where Debian's chromium or Playwright is missing."""
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    for stale in SCREENSHOTS.glob("FAILED-*.png"):
        stale.unlink()
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, chromium_sandbox=False, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A 1280x800 page; any JavaScript error fails the test; a failed test leaves a screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(10_000)
    try:
        yield tab
        if request.node.stash.get(FAILED, False):
            screenshot(tab, f"FAILED-{request.node.name}")
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under artifacts/screenshots (ignored by git, kept by CI)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
