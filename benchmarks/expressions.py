"""Expression benchmarks: nanoseconds per evaluation of compiled expressions. Prints figures.

    .venv/bin/python benchmarks/expressions.py [--quick]

Each expression is compiled once (as the executor does per node run) and then evaluated many
times for alternating items; the figure is the best of several rounds, in ns per evaluation.
"""

from __future__ import annotations

import argparse
import time

from flowlite.expressions import EvalContext, compile_value

CASES = [
    "{{ json.a }}",
    "{{ json.order.id }}",
    "{{ json.a * 2 + 1 }}",
    "{{ json.total > 100 }}",
    "{{ json.name.upper() }}",
    "{{ json.order.lines[0].sku }}",
    "Order {{ json.order.id }} for {{ json.name }}",
    "{{ json.status == 'paid' and json.total > 100 }}",
    "{{ sum([line.qty for line in json.order.lines]) }}",
    "{{ now().isoformat() }}",
]


def bench(text: str, ctx: EvalContext, iterations: int, rounds: int) -> float:
    compiled = compile_value(text)
    evaluate = compiled.evaluate
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(iterations):
            evaluate(ctx, i & 1)
        best = min(best, time.perf_counter() - start)
    return best / iterations * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    iterations, rounds = (20_000, 3) if args.quick else (200_000, 5)
    item = {
        "a": 21,
        "total": 120.5,
        "name": "Ann",
        "status": "paid",
        "order": {"id": 7, "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 3}]},
    }
    ctx = EvalContext(items=[{"json": item}, {"json": dict(item, a=22)}])
    loop_start = time.perf_counter()
    for i in range(iterations):
        i & 1  # the empty loop costs this much; subtracted below
    loop = (time.perf_counter() - loop_start) / iterations * 1e9
    print(f"{'expression':55} ns/eval")
    for text in CASES:
        print(f"{text:55} {bench(text, ctx, iterations, rounds) - loop:7.0f}")


if __name__ == "__main__":
    main()
