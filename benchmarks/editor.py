"""Editor benchmarks (issue: the browser editor). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/editor.py [--repeat 7]

1. Time to interactive of the canvas with a 200-node workflow in headless Chromium (Debian's
   /usr/bin/chromium through Playwright): from the start of navigation to the moment the editor
   script has drawn every node and connection and accepts input (``window.flowReadyAt``),
   median of repeated loads; once for a workflow with positions, once for an imported one
   without (auto layout). Goal: under 1 s.
2. The size of the JavaScript and CSS a page loads, uncompressed, htmx included. Goal: under
   150 KB together.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowlite.web.common import ASSETS, STATIC_DIR  # noqa: E402
from tests.server.conftest import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def big_workflow(count: int, positions: bool) -> dict[str, Any]:
    """A trigger, then branches of if -> set pairs that merge back: ``count`` nodes in all."""
    nodes: list[dict[str, Any]] = [{"name": "Start", "type": "manual_trigger"}]
    connections: list[dict[str, Any]] = []
    previous = "Start"
    index = 0
    while len(nodes) < count:
        check, tag = f"Check {index}", f"Tag {index}"
        nodes.append(
            {
                "name": check,
                "type": "if",
                "parameters": {"condition": f"{{{{ json.n > {index} }}}}"},
            }
        )
        nodes.append({"name": tag, "type": "set", "parameters": {"fields": {"n": index}}})
        connections.append({"from": previous, "to": check})
        connections.append({"from": check, "output": "true", "to": tag})
        previous = tag
        index += 1
    nodes = nodes[:count]
    names = {n["name"] for n in nodes}
    connections = [c for c in connections if c["from"] in names and c["to"] in names]
    if positions:
        for i, node in enumerate(nodes):
            node["position"] = [60 + (i % 20) * 300, 60 + (i // 20) * 130]
    return {"name": f"{count} nodes", "nodes": nodes, "connections": connections}


def asset_sizes() -> dict[str, int]:
    return {name: (STATIC_DIR / name).stat().st_size for name in ASSETS}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()

    sizes = asset_sizes()
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"  {name:<22} {size / 1000:6.1f} KB")
    print(f"JavaScript + CSS, uncompressed: {total / 1000:.1f} KB (goal < 150 KB)")

    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("flowlite")),
                "serve",
                "--port",
                str(port),
                "--data-dir",
                data,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            client = httpx.Client(base_url=base, timeout=30)
            for _ in range(300):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            ids = {
                label: client.post(
                    "/api/v1/workflows", json=big_workflow(args.nodes, positions)
                ).json()["id"]
                for label, positions in (("with positions", True), ("imported, auto layout", False))
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, chromium_sandbox=False, args=ARGS
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{base}/workflows/{ids['with positions']}")  # warm the cache once
                for label, workflow_id in ids.items():
                    times = []
                    for _ in range(args.repeat):
                        page.goto(f"{base}/workflows/{workflow_id}")
                        page.wait_for_selector("body[data-ready]")
                        times.append(page.evaluate("window.flowReadyAt"))
                        drawn = page.locator("#canvas .node").count()
                        assert drawn == args.nodes, drawn
                    print(
                        f"canvas time to interactive, {args.nodes} nodes ({label}): "
                        f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms "
                        f"(goal < 1000 ms)"
                    )
                browser.close()
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
