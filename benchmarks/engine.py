"""Engine benchmarks (issue: the engine). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/engine.py [--quick]

1. A 100-node linear chain of `set` nodes on one item, no persistence: node runs per second.
2. 100,000 items through set (one expression field) -> filter -> sort: items per second per node,
   and the peak RSS of a fresh process doing it, against the size of the items as JSON.
3. `flowlite run examples/hello.json`: whole-process wall time, median of repeated runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def chain_workflow(length: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"name": "Start", "type": "manual_trigger"}]
    connections = []
    for i in range(length):
        nodes.append(
            {"name": f"Set {i}", "type": "set", "parameters": {"fields": {f"f{i % 5}": i}}}
        )
        connections.append({"from": nodes[-2]["name"], "to": nodes[-1]["name"]})
    return {"name": "chain", "nodes": nodes, "connections": connections}


async def bench_chain(repeat: int) -> float:
    from flowlite.executor import Engine
    from flowlite.model import workflow_from_dict
    from flowlite.registry import Registry

    engine = Engine(Registry.default())
    workflow = workflow_from_dict(chain_workflow(100))
    for _ in range(5):
        await engine.execute(workflow, items=[{"json": {"id": 1}}])
    started = time.perf_counter()
    for _ in range(repeat):
        record = await engine.execute(workflow, items=[{"json": {"id": 1}}])
        assert record.status == "success"
    elapsed = time.perf_counter() - started
    return repeat * 101 / elapsed


PIPELINE = {
    "name": "pipeline",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {
            "name": "Price",
            "type": "set",
            "parameters": {"fields": {"gross": "{{ json.price * 1.2 }}"}},
        },
        {"name": "Big", "type": "filter", "parameters": {"condition": "{{ json.gross > 50 }}"}},
        {
            "name": "Sort",
            "type": "sort",
            "parameters": {"by": [{"field": "gross", "order": "desc"}]},
        },
    ],
    "connections": [
        {"from": "Start", "to": "Price"},
        {"from": "Price", "to": "Big"},
        {"from": "Big", "to": "Sort"},
    ],
}


def make_items(count: int) -> list[dict[str, Any]]:
    return [
        {
            "json": {
                "id": i,
                "sku": f"SKU-{i:07d}",
                "title": f"Product number {i} with a reasonably descriptive title",
                "price": (i * 37) % 100 + 0.5,
                "tags": ["alpha", "beta"] if i % 2 else ["gamma"],
                "customer": {"name": f"Customer {i % 977}", "email": f"c{i % 977}@example.org"},
            }
        }
        for i in range(count)
    ]


def pipeline_child(count: int) -> None:
    """Runs in a fresh process so that its peak RSS is the pipeline's own."""
    from flowlite.executor import Engine
    from flowlite.model import workflow_from_dict
    from flowlite.registry import Registry

    engine = Engine(Registry.default())
    workflow = workflow_from_dict(PIPELINE)
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    items = make_items(count)
    json_bytes = len(json.dumps([it["json"] for it in items]))
    record = asyncio.run(engine.execute(workflow, items=items))
    assert record.status == "success", record.error
    per_node = {
        name: count / (record.nodes[name].runs[0].duration_ms / 1000)
        if record.nodes[name].runs[0].duration_ms
        else 0
        for name in ("Price", "Big", "Sort")
    }
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "per_node": per_node,
                "json_bytes": json_bytes,
                "peak_kb": peak_kb,
                "baseline_kb": baseline_kb,
            }
        )
    )


def bench_pipeline(count: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--pipeline-child", str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def bench_cli(repeat: int) -> list[float]:
    flowlite = str(Path(sys.executable).with_name("flowlite"))
    # an installed package has its bytecode compiled; this machine sets PYTHONDONTWRITEBYTECODE,
    # which would make every run compile every module again
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [flowlite, "run", str(ROOT / "examples" / "hello.json")]
    subprocess.run(command, capture_output=True, check=True, env=env)  # writes the bytecode
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, env=env)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--pipeline-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_child:
        pipeline_child(args.pipeline_child)
        return
    repeat = 20 if args.quick else 100

    rate = asyncio.run(bench_chain(repeat))
    print(f"chain of 100 set nodes, 1 item: {rate:,.0f} node runs/s (goal >= 20,000)")

    data = bench_pipeline(100_000)
    for name, per_second in data["per_node"].items():
        print(f"100,000 items, node {name:<5}: {per_second:,.0f} items/s (goal >= 200,000)")
    json_mb = data["json_bytes"] / 1e6
    peak_mb = data["peak_kb"] / 1024
    base_mb = data["baseline_kb"] / 1024
    print(
        f"100,000 items: JSON {json_mb:.1f} MB, peak RSS {peak_mb:.1f} MB = {peak_mb / json_mb:.2f}x the JSON"
        f" (interpreter and imports before the items: {base_mb:.1f} MB; above that:"
        f" {(peak_mb - base_mb) / json_mb:.2f}x) (goal < 3x)"
    )

    times = bench_cli(5 if args.quick else 15)
    print(
        f"flowlite run examples/hello.json: median {statistics.median(times):.0f} ms,"
        f" min {min(times):.0f} ms over {len(times)} runs (goal < 300 ms median)"
    )


if __name__ == "__main__":
    main()
