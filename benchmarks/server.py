"""Server benchmarks (issue: the server). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/server.py [--quick] [--skip-postgres]

1. Executions stored per second: a 5-node workflow started through the API
   (`POST /api/v1/workflows/{id}/run`, 32 connections of `wrk` when it is installed, else an httpx
   client) on SQLite and on Postgres, timed until every execution is committed; and the server's
   CPU time per execution. The client shares the machine's cores with the server.
2. Memory: a workflow whose five nodes each output 40 MB of items (200 MB of items as JSON in
   all): the peak RSS of the `flowlite serve` process (VmHWM), with the default spill threshold
   and, for contrast, with spilling off.
3. Cold start: `flowlite serve` from process start to `/readyz` answering 200 (median).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
FLOWLITE = str(Path(sys.executable).with_name("flowlite"))
sys.path.insert(0, str(ROOT))

FIVE_NODES = {
    "name": "five nodes",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {"name": "Price", "type": "set", "parameters": {"fields": {"total": "{{ json.n * 3 }}"}}},
        {"name": "Big?", "type": "if", "parameters": {"condition": "{{ json.total > 10 }}"}},
        {"name": "Tag", "type": "set", "parameters": {"fields": {"priority": "high"}}},
        {"name": "Done", "type": "noop"},
    ],
    "connections": [
        {"from": "Start", "to": "Price"},
        {"from": "Price", "to": "Big?"},
        {"from": "Big?", "output": "true", "to": "Tag"},
        {"from": "Tag", "to": "Done"},
    ],
}

MB = 1024 * 1024
ITEM_BYTES = 1000
PER_NODE = 40 * MB

BIG = {
    "name": "200 MB of items",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {
            "name": "Generate",
            "type": "bench_generate",
            "parameters": {"count": PER_NODE // ITEM_BYTES, "size": ITEM_BYTES},
        },
        {"name": "A", "type": "set", "parameters": {"fields": {"a": 1}}},
        {"name": "B", "type": "set", "parameters": {"fields": {"b": 2}}},
        {"name": "C", "type": "set", "parameters": {"fields": {"c": 3}}},
    ],
    "connections": [
        {"from": "Start", "to": "Generate"},
        {"from": "Generate", "to": "A"},
        {"from": "A", "to": "B"},
        {"from": "B", "to": "C"},
    ],
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Serve:
    """A `flowlite serve` subprocess (or this file in --serve-generator mode)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, generator: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
        environment.update({"FLOWLITE_LOG_LEVEL": "warning", **(env or {})})
        if generator:
            command = [sys.executable, __file__, "--serve-generator", str(data_dir), str(self.port)]
        else:
            command = [FLOWLITE, "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.ready_after = self._wait_ready()

    def _wait_ready(self) -> float:
        with httpx.Client(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise SystemExit("the server exited during start-up")
                try:
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return time.perf_counter() - self.started
                except httpx.TransportError:
                    time.sleep(0.005)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- 1. executions stored per second -------------------------------------------------------
async def _throughput(url: str, count: str, total: int, concurrency: int = 32) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        response = await client.post("/api/v1/workflows", json=FIVE_NODES)
        workflow_id = response.json()["id"]
        for _ in range(20):  # warm up
            await client.post(f"/api/v1/workflows/{workflow_id}/run", json={"items": {"n": 5}})
        queue = iter(range(total))
        started = time.perf_counter()

        async def worker() -> None:
            for _ in queue:
                reply = await client.post(
                    f"/api/v1/workflows/{workflow_id}/run", json={"items": {"n": 5}}
                )
                assert reply.status_code == 202, reply.text

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        while await _count(count) < total + 20:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.01)
        return total / (time.perf_counter() - started)


async def _count(where: str) -> int:
    if where.startswith("postgresql"):
        import asyncpg

        connection = await asyncpg.connect(where.replace("postgresql+asyncpg", "postgresql"))
        try:
            value: int = await connection.fetchval(
                "SELECT count(*) FROM executions WHERE status = 'success'"
            )
        finally:
            await connection.close()
        return value
    connection = sqlite3.connect(where, timeout=30)
    try:
        value = connection.execute(
            "SELECT count(*) FROM executions WHERE status = 'success'"
        ).fetchone()[0]
    finally:
        connection.close()
    return value


def _wrk_throughput(url: str, count: str, seconds: int, connections: int = 32) -> tuple[float, int]:
    """Runs started with wrk (a C load generator: the client barely costs CPU) for ``seconds``;
    returns executions stored per second, until the last one is committed, and how many."""
    with httpx.Client(base_url=url, timeout=60) as client:
        workflow_id = client.post("/api/v1/workflows", json=FIVE_NODES).json()["id"]
        for _ in range(20):  # warm up
            client.post(f"/api/v1/workflows/{workflow_id}/run", json={"items": {"n": 5}})
    before = asyncio.run(_count(count))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.body = \'{"items": {"n": 5}}\'\n'
        )
    started = time.perf_counter()
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            script.name,
            f"{url}/api/v1/workflows/{workflow_id}/run",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(script.name)
    requests = int(result.stdout.split(" requests in ")[0].split()[-1])
    failed = 0
    for line in result.stdout.splitlines():
        if "Non-2xx" in line:
            failed = int(line.split()[-1])
    target = before + requests - failed
    last, stable_since = -1, time.perf_counter()
    while True:
        stored = asyncio.run(_count(count))
        if stored >= target:
            break
        if stored != last:
            last, stable_since = stored, time.perf_counter()
        elif time.perf_counter() - stable_since > 10:
            break
        time.sleep(0.01)
    return (stored - before) / (time.perf_counter() - started), stored - before


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(server: Serve, where: str, total: int, seconds: int) -> dict[str, Any]:
    cpu = _server_cpu(server.process.pid)
    if shutil.which("wrk"):
        rate, stored = _wrk_throughput(server.url, where, seconds)
        client = "wrk"
    else:
        rate, stored = asyncio.run(_throughput(server.url, where, total)), total
        client = "httpx"
    per = (_server_cpu(server.process.pid) - cpu) / max(stored, 1) * 1000
    return {"rate": rate, "stored": stored, "cpu_ms": per, "client": client}


def _postgres(root: Path) -> tuple[str, list[str]] | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        return None
    bindir = found[-1].parent
    wrap = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    data = root / "pg"
    subprocess.run(
        [*wrap, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *wrap,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            f"-p {port} -k {root} -h 127.0.0.1",
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    stop = [*wrap, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", stop


def bench_throughput(total: int, seconds: int, skip_postgres: bool) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = Serve(data)
        try:
            results["sqlite"] = _measure(server, str(data / "flowlite.db"), total, seconds)
        finally:
            server.stop()
    if skip_postgres:
        return results
    root = Path(tempfile.mkdtemp(prefix="flowlite-bench-pg-"))
    cluster = _postgres(root)
    if cluster is None:
        print("  (Postgres is not installed: skipped)")
        return results
    url, stop = cluster
    try:
        server = Serve(root / "data", env={"FLOWLITE_DATABASE_URL": url})
        try:
            results["postgres"] = _measure(server, url, total, seconds)
        finally:
            server.stop()
    finally:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    return results


# -- 2. memory -------------------------------------------------------------------------------
def bench_memory(spill_threshold: str) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Serve(
            Path(tmp) / "data",
            env={"FLOWLITE_SPILL_THRESHOLD_BYTES": spill_threshold},
            generator=True,
        )
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                workflow_id = client.post("/api/v1/workflows", json=BIG).json()["id"]
                started = time.perf_counter()
                reply = client.post(f"/api/v1/workflows/{workflow_id}/run", params={"wait": "true"})
                elapsed = time.perf_counter() - started
                status = reply.json().get("status", reply.text[:200])
            return server.peak_rss_mb(), elapsed, status
        finally:
            server.stop()


def serve_generator(data_dir: str, port: int) -> None:
    """Run the server with a `bench_generate` node type: ``count`` items of ``size`` bytes."""
    import uvicorn

    from flowlite.app import create_app
    from flowlite.config import load_config
    from flowlite.registry import Registry
    from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

    class Generate(NodeType):
        type = "bench_generate"
        description = "Benchmark: emits `count` items with a `size`-byte payload each."
        params = (Param("count", "integer"), Param("size", "integer"))

        async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
            count = int(ctx.parameters["count"])
            half = int(ctx.parameters["size"]) // 2
            return {
                "main": [
                    {"json": {"i": i, "payload": os.urandom(half).hex()}} for i in range(count)
                ]
            }

    registry = Registry.default()
    registry.add(Generate)
    config = load_config({"data_dir": data_dir, "port": port})
    uvicorn.run(
        create_app(config, registry=registry), host="127.0.0.1", port=port, log_level="warning"
    )


# -- 3. cold start ---------------------------------------------------------------------------
def bench_cold_start(repeat: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        first = Serve(Path(tmp) / "fresh")
        fresh = first.ready_after
        first.stop()
        times = []
        for _ in range(repeat):
            server = Serve(Path(tmp) / "fresh")
            times.append(server.ready_after)
            server.stop()
    return fresh, statistics.median(times)


def _gauge() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer executions and repeats")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--serve-generator", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_generator:
        serve_generator(args.serve_generator[0], int(args.serve_generator[1]))
        return
    total = 1000 if args.quick else 5000
    seconds = 5 if args.quick else 15
    print(f"0. machine: a 3,000,000-step Python loop takes {_gauge():.2f} s (idle: ~0.15 s)")
    print(
        "1. executions stored per second (5-node workflow started through the API, 32 connections)"
    )
    for database, figures in bench_throughput(total, seconds, args.skip_postgres).items():
        print(
            f"   {database:<9} {figures['rate']:8.0f} executions/s   ({figures['stored']} stored; "
            f"server CPU {figures['cpu_ms']:.2f} ms per execution, HTTP included; "
            f"client {figures['client']})"
        )
    print(
        "2. peak RSS of the server, a workflow outputting 5 x 40 MB = 200 MB of items (goal < 300 MB)"
    )
    for label, threshold in (("spill at 8 MB (default)", "8MB"), ("spilling off", "100GB")):
        rss, elapsed, status = bench_memory(threshold)
        print(f"   {label:<24} {rss:6.0f} MB peak RSS   ({elapsed:.1f} s, {status})")
    fresh, warm = bench_cold_start(3 if args.quick else 7)
    print("3. `flowlite serve` cold start to ready (goal < 1 s)")
    print(f"   new data directory      {fresh:6.2f} s (creates and migrates the database)")
    print(f"   existing data directory {warm:6.2f} s (median)")


if __name__ == "__main__":
    main()
