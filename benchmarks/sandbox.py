"""Sandbox benchmarks (issue: the sandbox). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/sandbox.py [--quick] [--isolation auto|namespaces|process]

1. Round trip of a trivial `all_items` job on one item through a warm worker: median and p99
   (goal: under 1 ms median).
2. 10,000 items through an `each_item` job (batched per round trip): items per second
   (goal: at least 50,000).
3. Time to start one worker, for context (warm workers exist so that jobs never pay it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from flowlite.sandbox import SandboxConfig, SandboxPool


async def round_trips(pool: SandboxPool, count: int) -> list[float]:
    items = [{"json": {"id": 1, "name": "one"}}]
    for _ in range(50):
        await pool.run("return items", "all_items", items)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        await pool.run("return items", "all_items", items)
        timings.append(time.perf_counter() - started)
    return timings


async def each_item_rate(pool: SandboxPool, count: int, repeat: int) -> float:
    items = [{"json": {"id": i, "price": i * 1.5, "name": f"item {i}"}} for i in range(count)]
    code = "return {'id': item['id'], 'gross': round(item['price'] * 1.2, 2)}"
    await pool.run(code, "each_item", items)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = await pool.run(code, "each_item", items)
        best = min(best, time.perf_counter() - started)
        assert len(result.items) == count
    return count / best


async def start_time(isolation: str, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        pool = SandboxPool(SandboxConfig(size=1, isolation=isolation))
        started = time.perf_counter()
        await pool.start()
        timings.append(time.perf_counter() - started)
        await pool.close()
    return statistics.median(timings)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--isolation", default="auto", choices=["auto", "namespaces", "process"])
    args = parser.parse_args()
    count, repeat = (500, 2) if args.quick else (5000, 5)

    async with SandboxPool(SandboxConfig(size=1, isolation=args.isolation)) as pool:
        print(f"isolation: {pool.isolation} (seccomp {pool.describe()['seccomp']})")
        timings = sorted(await round_trips(pool, count))
        median = statistics.median(timings) * 1000
        p99 = timings[int(len(timings) * 0.99) - 1] * 1000
        print(f"trivial round trip, warm worker: median {median:.3f} ms, p99 {p99:.3f} ms")
        rate = await each_item_rate(pool, 10_000, repeat)
        print(f"each_item, 10,000 items: {rate:,.0f} items/s")
    print(f"starting one worker: {await start_time(args.isolation, 3) * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
