"""Expression benchmarks: nanoseconds per evaluation of compiled expressions. Prints figures.

    .venv/bin/python benchmarks/expressions.py [--quick]

Each expression is compiled once (as the executor does per node run) and then evaluated many
times, alternating between two items; a figure is the best of many rounds, in ns per
evaluation, with the cost of the empty loop taken off. Two references calibrate the machine:
the same field access and arithmetic written as plain Python, and Jinja's sandbox (which the
spec measured at about 10 microseconds a call).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from flowlite.expressions import Compiled, EvalContext, compile_value

CASES = [
    "{{ json.a }}",
    "{{ json.order.id }}",
    "{{ json.a * 2 + 1 }}",
    "Order {{ json.order.id }} for {{ json.name }}",
    "{{ json.total > 100 }}",
    "{{ json.status == 'paid' and json.total > 100 }}",
    "{{ json.name.upper() }}",
    "{{ json.order.lines[0].sku }}",
    "{{ len(json.order.lines) }}",
    "{{ sum([line.qty for line in json.order.lines]) }}",
    "{{ now().isoformat() }}",
]


def timed(evaluate: Callable[[int], Any], iterations: int, rounds: int) -> float:
    """Best-of-rounds ns per call of ``evaluate(i & 1)``, the loop's own cost excluded."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(iterations):
            evaluate(i & 1)
        best = min(best, time.perf_counter() - start)
    empty = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(iterations):
            i & 1  # the loop alone, subtracted below
        empty = min(empty, time.perf_counter() - start)
    return (best - empty) / iterations * 1e9


def _evaluator(compiled: Compiled, ctx: EvalContext) -> Callable[[int], Any]:
    return lambda index: compiled.evaluate(ctx, index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    # Many short rounds: on a busy machine the fastest round is the one least disturbed.
    iterations, rounds = (10_000, 5) if args.quick else (20_000, 40)
    item = {
        "a": 21,
        "total": 120.5,
        "name": "Ann",
        "status": "paid",
        "order": {"id": 7, "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 3}]},
    }
    items = [{"json": item}, {"json": dict(item, a=22)}]
    ctx = EvalContext(items=items)

    print(f"{'expression':55} {'ns/eval':>8}")
    for text in CASES:
        compiled = compile_value(text)
        print(f"{text:55} {timed(_evaluator(compiled, ctx), iterations, rounds):8.0f}")

    print("\nreferences")
    plain = timed(lambda i: items[i]["json"]["a"] * 2 + 1, iterations, rounds)
    print(f"{'plain Python: items[i][json][a] * 2 + 1':55} {plain:8.0f}")
    jinja = SandboxedEnvironment().compile_expression("json.a * 2 + 1")
    sandboxed = timed(lambda i: jinja(json=items[i]["json"]), iterations // 10, rounds)
    print(f"{'jinja2 sandbox: json.a * 2 + 1':55} {sandboxed:8.0f}")


if __name__ == "__main__":
    main()
