"""Webhook benchmark (issue: triggers). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/webhooks.py [--duration 5] [--quick]

Load comes from `wrk` (Debian package `wrk`) in a second process on 127.0.0.1, at 1, 10 and 50
concurrent connections, against three servers started here, one at a time:

1. a bare Litestar JSON endpoint (uvicorn, one worker) that parses the posted JSON and answers
   it: the ceiling for this machine, measured in the same run;
2. `flowlite serve` with a workflow webhook -> set -> respond_to_webhook (``respond:
   respond_node``), every execution saved to SQLite (the answer waits until the execution's
   row is committed);
3. the same workflow with ``settings.save.success: none`` (executions not saved).

Goal at 10 connections: at least 25% of the bare endpoint's throughput, p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

FLOWLITE = str(Path(sys.executable).with_name("flowlite"))
BODY = '{"order": 42, "customer": "ann", "items": [{"sku": "a-1", "qty": 2}], "total": 19.5}'

WORKFLOW: dict[str, Any] = {
    "name": "webhook bench",
    "nodes": [
        {
            "name": "Hook",
            "type": "webhook",
            "parameters": {"path": "bench", "method": "POST", "respond": "respond_node"},
        },
        {
            "name": "Price",
            "type": "set",
            "parameters": {"fields": {"total": "{{ json.body.total * 2 }}", "ok": True}},
        },
        {
            "name": "Reply",
            "type": "respond_to_webhook",
            "parameters": {
                "respond_with": "json",
                "body": {"total": "{{ json.total }}", "ok": "{{ json.ok }}"},
            },
        },
    ],
    "connections": [{"from": "Hook", "to": "Price"}, {"from": "Price", "to": "Reply"}],
}

BARE_APP = """
from litestar import Litestar, post

@post("/bare", status_code=200)
async def bare(data: dict) -> dict:
    return {"total": data["total"] * 2, "ok": True}

app = Litestar([bare])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.communicate()[0]!r}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, connections: int, duration: float, script: Path) -> dict[str, float]:
    threads = 1 if connections == 1 else 2
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(name: str) -> float:
        match = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rate": rate,
        "p50": percentile("50"),
        "p99": percentile("99"),
        "bad": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def measure(
    label: str, url: str, duration: float, script: Path, levels: list[int]
) -> dict[int, dict[str, float]]:
    wrk(url, 10, 1, script)  # warm-up
    results = {}
    for connections in levels:
        result = wrk(url, connections, duration, script)
        results[connections] = result
        bad = f"  ({result['bad']:.0f} non-2xx)" if result["bad"] else ""
        print(
            f"{label:<34} {connections:>3} conn  {result['rate']:>9,.0f} req/s  "
            f"p50 {result['p50']:>6.2f} ms  p99 {result['p99']:>6.2f} ms{bad}",
            flush=True,
        )
    return results


def bare(workdir: Path, duration: float, script: Path, levels: list[int]) -> dict[int, Any]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", process)
        return measure(
            "bare Litestar endpoint", f"http://127.0.0.1:{port}/bare", duration, script, levels
        )
    finally:
        stop(process)


def flowlite(
    workdir: Path, saved: bool, duration: float, script: Path, levels: list[int]
) -> dict[int, Any]:
    data = workdir / ("saved" if saved else "unsaved")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
    environment["FLOWLITE_LOG_LEVEL"] = "warning"
    process = subprocess.Popen(
        [FLOWLITE, "serve", "--port", str(port), "--data-dir", str(data)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", process)
        document = dict(WORKFLOW)
        if not saved:
            document["settings"] = {"save": {"success": "none"}}
        created = httpx.post(f"{base}/api/v1/workflows", json=document).json()
        httpx.patch(f"{base}/api/v1/workflows/{created['id']}", json={"active": True})
        answer = httpx.post(
            f"{base}/webhook/bench", content=BODY, headers={"content-type": "application/json"}
        )
        assert answer.json() == {"total": 39.0, "ok": True}, answer.text
        label = "flowlite, executions saved" if saved else "flowlite, save.success: none"
        results = measure(label, f"{base}/webhook/bench", duration, script, levels)
    finally:
        stop(process)
    connection = sqlite3.connect(data / "flowlite.db")
    stored = connection.execute("SELECT count(*) FROM executions").fetchone()[0]
    connection.close()
    print(f"{'':<34} executions stored: {stored:,}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--quick", action="store_true", help="2 s per measurement")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    duration = 2.0 if args.quick else args.duration
    levels = [1, 10, 50]
    with tempfile.TemporaryDirectory(prefix="flowlite-webhooks-") as tmp:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = '{BODY}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        print(f"wrk, {duration:g} s per level, {os.cpu_count()} cores shared with the server")
        ceiling = bare(workdir, duration, script, levels)
        saved = flowlite(workdir, True, duration, script, levels)
        unsaved = flowlite(workdir, False, duration, script, levels)
    print()
    for label, results in (("saved", saved), ("not saved", unsaved)):
        ratio = results[10]["rate"] / ceiling[10]["rate"]
        p99 = results[10]["p99"]
        print(
            f"at 10 connections, {label}: {ratio:.0%} of the bare endpoint "
            f"(goal >= 25%), p99 {p99:.2f} ms (goal < 20 ms)"
        )


if __name__ == "__main__":
    main()
