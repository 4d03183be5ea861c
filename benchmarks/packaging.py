"""Packaging benchmarks (issue: packaging and release). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/packaging.py [--binary PATH] [--build] [--runs N]

1. The size of the one-file binary (goal: under 60 MB).
2. `flowlite --version` from the binary: wall time of a fresh process (goal: under 1.5 s).
3. `flowlite serve` from the binary until /readyz answers 200: on an empty data directory (the
   schema is created) and on an existing one (a restart) (goal: under 1.5 s).
4. The same two starts through the virtualenv's `flowlite`, for comparison.

Without --binary the script uses dist/flowlite when it is newer than every source file, and builds
it with packaging/build-binary otherwise (or always, with --build). A one-file binary unpacks its
shared libraries to a temporary directory at every start: that copy is part of every figure. The
first run of each measurement is shown apart: it may find files outside the page cache. Next to
the wall time, the CPU time the process (and its children) used is shown: on a busy machine the
wall time grows, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "flowlite", ROOT / "packaging", ROOT / "pyproject.toml")
GOAL_MB = 60
GOAL_SECONDS = 1.5


def newest_source() -> float:
    newest = 0.0
    for source in SOURCES:
        for path in [source] if source.is_file() else source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def binary_path(given: str | None, build: bool) -> Path:
    if given:
        return Path(given).resolve()
    built = ROOT / "dist" / "flowlite"
    if build or not built.is_file() or built.stat().st_mtime <= newest_source():
        print("building dist/flowlite (packaging/build-binary) ...", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [str(ROOT / "packaging" / "build-binary")],
            check=True,
            env={**os.environ, "PYTHON": sys.executable},
        )
        print(f"  built in {time.perf_counter() - started:.0f} s")
    return built


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}


Timing = tuple[float, float]  # (wall seconds, CPU seconds)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def group_cpu(group: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def time_version(command: str, runs: int) -> list[Timing]:
    times = []
    for _ in range(runs):
        cpu = children_cpu()
        started = time.perf_counter()
        subprocess.run([command, "--version"], check=True, capture_output=True, env=environment())
        times.append((time.perf_counter() - started, children_cpu() - cpu))
    return times


def time_serve(command: str, data_dir: Path) -> Timing:
    """From starting `serve` until /readyz answers 200; the server is stopped after."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [command, "serve", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment(),
        start_new_session=True,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command} serve exited with status {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - started, group_cpu(process.pid)
            except OSError:
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(30)


def time_serves(command: str, runs: int) -> tuple[list[Timing], list[Timing]]:
    fresh: list[Timing] = []
    restart: list[Timing] = []
    for _ in range(runs):
        directory = Path(tempfile.mkdtemp(prefix="flowlite-bench-"))
        try:
            fresh.append(time_serve(command, directory / "data"))
            restart.append(time_serve(command, directory / "data"))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return fresh, restart


def show(label: str, times: list[Timing], goal: float | None = GOAL_SECONDS) -> None:
    rest = times[1:] or times
    wall = statistics.median(t[0] for t in rest)
    cpu = statistics.median(t[1] for t in rest)
    verdict = ""
    if goal is not None:
        verdict = "  (goal met)" if wall < goal else f"  (goal: < {goal} s)"
    print(
        f"  {label:<34} median {wall:.3f} s (CPU {cpu:.3f} s), "
        f"max {max(t[0] for t in rest):.3f} s, first {times[0][0]:.3f} s{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", help="The binary to measure (default: dist/flowlite).")
    parser.add_argument("--build", action="store_true", help="Rebuild dist/flowlite first.")
    parser.add_argument("--runs", type=int, default=7, help="Runs per measurement (default 7).")
    args = parser.parse_args()
    binary = binary_path(args.binary, args.build)
    venv = str(Path(sys.executable).with_name("flowlite"))

    size = binary.stat().st_size / 1e6
    print(f"binary {binary}")
    verdict = "goal met" if size < GOAL_MB else f"goal: < {GOAL_MB} MB"
    print(f"  size                               {size:.1f} MB ({verdict})")
    show("flowlite --version", time_version(str(binary), args.runs))
    fresh, restart = time_serves(str(binary), max(2, args.runs // 2))
    show("serve to ready, new data dir", fresh)
    show("serve to ready, existing data dir", restart)
    print(f"virtualenv {venv} (for comparison)")
    show("flowlite --version", time_version(venv, args.runs), None)
    fresh, restart = time_serves(venv, max(2, args.runs // 2))
    show("serve to ready, new data dir", fresh, None)
    show("serve to ready, existing data dir", restart, None)


if __name__ == "__main__":
    main()
