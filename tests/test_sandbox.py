"""The sandbox pool against real worker processes: modes, results, logs, errors, limits."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from flowlite.sandbox import (
    CodeResult,
    SandboxConfig,
    SandboxError,
    SandboxPool,
    SandboxUnavailable,
)
from flowlite.sandbox.pool import BATCH

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(SandboxConfig(size=2, timeout=20)) as started:
        yield started


def items(*values: dict[str, object]) -> list[dict[str, object]]:
    return [{"json": value} for value in values]


async def assert_healthy(pool: SandboxPool) -> None:
    """A trivial job still works: the pool replaced whatever broke."""
    result = await pool.run("return [{'ok': True}]", "all_items", [])
    assert result.items == [{"json": {"ok": True}}]


# --- the two modes ----------------------------------------------------------------------------


async def test_all_items_sees_plain_dicts_and_returns_items(pool: SandboxPool) -> None:
    code = textwrap.dedent(
        """
        total = sum(i["n"] for i in items)
        return [{"total": total, "count": len(items)}, {"json": {"wrapped": True}}]
        """
    )
    result = await pool.run(code, "all_items", items({"n": 1}, {"n": 2}, {"n": 3}))
    assert result == CodeResult(
        items=[{"json": {"total": 6, "count": 3}}, {"json": {"wrapped": True}}], logs=[]
    )


async def test_all_items_may_return_one_dict(pool: SandboxPool) -> None:
    result = await pool.run("return {'one': 1}", "all_items", [])
    assert result.items == [{"json": {"one": 1}}]


async def test_each_item_gets_item_and_index(pool: SandboxPool) -> None:
    code = "if item['n'] == 2:\n    return None\nreturn {'n': item['n'], 'i': index}"
    result = await pool.run(code, "each_item", items({"n": 1}, {"n": 2}, {"n": 3}))
    assert result.items == [{"json": {"n": 1, "i": 0}}, {"json": {"n": 3, "i": 2}}]


async def test_each_item_may_return_several_items(pool: SandboxPool) -> None:
    code = "return [{'n': item['n']}, {'json': {'n': -item['n']}}]"
    result = await pool.run(code, "each_item", items({"n": 1}, {"n": 2}))
    assert [i["json"]["n"] for i in result.items] == [1, -1, 2, -2]


async def test_each_item_batches_keep_order_and_indexes(pool: SandboxPool) -> None:
    count = BATCH * 2 + 17
    code = "return {'n': item['n'], 'i': index}"
    result = await pool.run(code, "each_item", items(*({"n": n * 10} for n in range(count))))
    assert [i["json"]["i"] for i in result.items] == list(range(count))
    assert all(i["json"]["n"] == i["json"]["i"] * 10 for i in result.items)


async def test_each_item_with_no_items_returns_nothing(pool: SandboxPool) -> None:
    assert await pool.run("return item", "each_item", []) == CodeResult(items=[], logs=[])


async def test_items_are_not_shared_with_the_caller(pool: SandboxPool) -> None:
    given = items({"n": 1})
    await pool.run("items[0]['n'] = 99\nreturn items", "all_items", given)
    assert given == [{"json": {"n": 1}}]


async def test_unknown_mode_is_an_error(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError, match="unknown code mode"):
        await pool.run("return items", "every_item", [])


# --- logs and errors --------------------------------------------------------------------------


async def test_print_is_captured_as_logs(pool: SandboxPool) -> None:
    code = "print('hello', len(items))\nprint('two\\nlines')\nreturn items"
    result = await pool.run(code, "all_items", items({}))
    assert result.logs == ["hello 1", "two", "lines"]


async def test_each_item_logs_from_every_batch(pool: SandboxPool) -> None:
    code = "if index % 1000 == 0:\n    print('at', index)\nreturn item"
    result = await pool.run(code, "each_item", items(*({} for _ in range(BATCH * 2))))
    assert result.logs == [f"at {n}" for n in range(0, BATCH * 2, 1000)]


async def test_traceback_is_trimmed_to_user_lines(pool: SandboxPool) -> None:
    code = textwrap.dedent(
        """\
        import json

        def parse(text):
            return json.loads(text)

        return [parse(i["raw"]) for i in items]
        """
    )
    with pytest.raises(SandboxError) as caught:
        await pool.run(code, "all_items", items({"raw": "{not json"}))
    error = caught.value
    assert error.kind == "error"
    assert error.message.startswith("json.decoder.JSONDecodeError: Expecting property name")
    assert 'File "<code>", line 6, in <module>' in error.details
    assert 'File "<code>", line 4, in parse' in error.details
    assert "return json.loads(text)" in error.details
    for internal in ("flowlite", "worker.py", "sandbox", "json/decoder.py", "__flowlite_main"):
        assert internal not in error.details
    assert error.details.strip().splitlines()[-1] == error.message


async def test_error_keeps_logs_and_item_index(pool: SandboxPool) -> None:
    code = "print('seen', index)\nreturn {'x': 10 // item['d']}"
    with pytest.raises(SandboxError) as caught:
        await pool.run(code, "each_item", items({"d": 1}, {"d": 0}, {"d": 2}))
    assert caught.value.message == "ZeroDivisionError: integer division or modulo by zero"
    assert caught.value.item_index == 1
    assert caught.value.logs == ["seen 0", "seen 1"]


async def test_syntax_error_names_the_line(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError) as caught:
        await pool.run("x = 1\ny = (\nreturn items", "all_items", [])
    assert caught.value.message.startswith("SyntaxError:")
    assert "(line 2)" in caught.value.message
    assert "<code>" in caught.value.details


async def test_system_exit_is_an_ordinary_error(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError, match="SystemExit"):
        await pool.run("raise SystemExit(3)", "all_items", [])
    await assert_healthy(pool)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("return None", "code returned nothing"),
        ("return 5", "code must return a list of items, not int"),
        ("return [1, 2]", "code must return dicts (items), but returned a int"),
        ("return [{'json': 3}]", "the 'json' of a returned item must be a dict, not int"),
        ("return [{'s': {1, 2}}]", "code returned a value that is not JSON: set"),
        ("import datetime\nreturn [{'d': datetime.date(2024, 1, 1)}]", "not JSON: date"),
        ("return [{'f': lambda: 1}]", "code returned a value that is not JSON: function"),
        ("return [{'n': float('nan')}]", "code returned a value that is not JSON: Out of range"),
        ("return [{(1, 2): 'tuple key'}]", "code returned a value that is not JSON: keys must"),
        ("a = {}\na['self'] = a\nreturn [a]", "not JSON: Circular reference"),
    ],
)
async def test_bad_return_values_are_clear_errors(
    pool: SandboxPool, code: str, message: str
) -> None:
    with pytest.raises(SandboxError) as caught:
        await pool.run(code, "all_items", [])
    assert message in caught.value.message
    await assert_healthy(pool)


async def test_non_string_scalar_keys_become_strings(pool: SandboxPool) -> None:
    result = await pool.run("return [{1: 'a', None: 'b'}]", "all_items", [])
    assert result.items == [{"json": {"1": "a", "null": "b"}}]


# --- modules and builtins ---------------------------------------------------------------------


async def test_allowed_standard_modules_import(pool: SandboxPool) -> None:
    code = textwrap.dedent(
        """
        import json, re, math, datetime, itertools, collections, hashlib, base64, uuid
        import random, statistics, decimal
        from urllib.parse import quote
        from collections import Counter
        return [{
            "dumped": json.dumps([1]),
            "re": re.sub(r"\\d", "#", "a1"),
            "sqrt": math.sqrt(16),
            "year": datetime.date(2024, 5, 1).year,
            "pairs": list(itertools.pairwise([1, 2, 3])),
            "counts": Counter("aab"),
            "md5": hashlib.md5(b"x").hexdigest(),
            "b64": base64.b64encode(b"hi").decode(),
            "uuid": len(str(uuid.uuid4())),
            "rand": 0 <= random.random() < 1,
            "mean": statistics.mean([1, 2, 3]),
            "dec": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")),
            "quoted": quote("a b"),
        }]
        """
    )
    result = await pool.run(code, "all_items", [])
    assert result.items[0]["json"] == {
        "dumped": "[1]",
        "re": "a#",
        "sqrt": 4.0,
        "year": 2024,
        "pairs": [[1, 2], [2, 3]],
        "counts": {"a": 2, "b": 1},
        "md5": "9dd4e461268c8034f5c8564e155c67a6",
        "b64": "aGk=",
        "uuid": 36,
        "rand": True,
        "mean": 2,
        "dec": "0.3",
        "quoted": "a%20b",
    }


@pytest.mark.parametrize(
    "code",
    [
        "import os",
        "import subprocess",
        "from urllib import request",
        "import urllib.request",
        "from . import x",
        "import colorsys",
    ],
)
async def test_other_modules_do_not_import(pool: SandboxPool, code: str) -> None:
    with pytest.raises(SandboxError, match="ImportError"):
        await pool.run(code + "\nreturn items", "all_items", [])


@pytest.mark.parametrize("name", ["open", "eval", "exec", "compile", "input", "breakpoint"])
async def test_dangerous_builtins_are_gone(pool: SandboxPool, name: str) -> None:
    with pytest.raises(SandboxError, match=f"NameError: name '{name}' is not defined"):
        await pool.run(f"{name}('1')\nreturn items", "all_items", [])


async def test_globals_do_not_leak_between_runs(pool: SandboxPool) -> None:
    await pool.run(
        "global leaked\nleaked = 1\n__builtins__['len'] = None\nreturn []", "all_items", []
    )
    result = await pool.run(
        "return [{'leaked': 'leaked' in globals(), 'len': len([1])}]", "all_items", []
    )
    assert result.items == [{"json": {"leaked": False, "len": 1}}]


async def test_operator_can_allow_more_modules() -> None:
    config = SandboxConfig(size=1, extra_modules=("colorsys",), isolation="process")
    async with SandboxPool(config) as extra:
        result = await extra.run(
            "import colorsys\nreturn [{'h': colorsys.rgb_to_hsv(1, 0, 0)[0]}]", "all_items", []
        )
    assert result.items == [{"json": {"h": 0.0}}]


# --- limits -----------------------------------------------------------------------------------


async def test_timeout_kills_and_replaces_the_worker(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError) as caught:
        await pool.run("while True:\n    pass", "all_items", [], timeout=1)
    assert caught.value.message == "code timed out after 1 s"
    assert caught.value.kind == "timeout"
    await assert_healthy(pool)


async def test_a_job_cannot_ask_for_more_time_than_configured() -> None:
    async with SandboxPool(SandboxConfig(size=1, timeout=0.5, isolation="process")) as short:
        with pytest.raises(SandboxError, match=r"timed out after 0\.5 s"):
            await short.run("while True:\n    pass", "all_items", [], timeout=30)


async def test_memory_limit_is_a_clear_error(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError) as caught:
        await pool.run("data = bytearray(10 * 1024 ** 3)\nreturn []", "all_items", [])
    assert caught.value.message == "code ran out of memory (limit 512 MB)"
    assert caught.value.kind == "memory"
    await assert_healthy(pool)


@pytest.mark.parametrize("isolation", ["auto", "process"])
async def test_cpu_limit_kills_a_busy_worker(isolation: str) -> None:
    config = SandboxConfig(size=1, cpu_seconds=1, timeout=20, isolation=isolation)
    async with SandboxPool(config) as busy:
        with pytest.raises(SandboxError) as caught:
            await busy.run("while True:\n    pass", "all_items", [])
        assert caught.value.kind == "cpu"
        assert caught.value.message == "code used more than 1 CPU seconds"
        await assert_healthy(busy)


async def test_printing_too_much_is_cut_off(pool: SandboxPool) -> None:
    code = "for _ in range(1024):\n    print('x' * (1 << 20))\nreturn []"
    with pytest.raises(SandboxError) as caught:
        await pool.run(code, "all_items", [])
    assert caught.value.kind == "output"
    assert "more than 16 MB of output" in caught.value.message
    await assert_healthy(pool)


async def test_returning_too_much_is_an_error() -> None:
    config = SandboxConfig(size=1, max_output_bytes=100_000, isolation="process")
    async with SandboxPool(config) as small:
        with pytest.raises(SandboxError, match="more than 100000 bytes of output"):
            await small.run("return {'x': 'y' * 200}", "each_item", items(*({},) * 3000))
        await assert_healthy(small)


# --- the pool ---------------------------------------------------------------------------------


async def test_cancelling_a_job_kills_its_worker(pool: SandboxPool) -> None:
    task = asyncio.ensure_future(pool.run("while True:\n    pass", "all_items", []))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_healthy(pool)
    await assert_healthy(pool)


async def test_more_jobs_than_workers_all_finish(pool: SandboxPool) -> None:
    code = "import time\ntime.sleep(0.05)\nreturn [{'i': items[0]['i']}]"
    results = await asyncio.gather(
        *(pool.run(code, "all_items", items({"i": i})) for i in range(8))
    )
    assert [r.items[0]["json"]["i"] for r in results] == list(range(8))


async def test_a_dead_worker_is_reported_and_replaced(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError) as caught:
        await pool.run("__import__('random')._os._exit(3)", "all_items", [])
    assert caught.value.kind == "crash"
    assert "exited (status 3)" in caught.value.message
    await assert_healthy(pool)


async def test_start_is_idempotent_and_pool_restarts_after_close() -> None:
    pool = SandboxPool(SandboxConfig(size=1, isolation="process"))
    await pool.start()
    await pool.start()
    await pool.close()
    await pool.close()
    await assert_healthy(pool)
    await pool.close()


async def test_describe_says_what_is_in_force(pool: SandboxPool) -> None:
    info = pool.describe()
    assert info["isolation"] == pool.isolation
    assert pool.isolation in ("namespaces", "process")
    assert info["started"] is True
    assert info["limits"]["memory_mb"] == 512
    assert info["seccomp"] == "on"
    if os.geteuid() == 0:
        assert info["uid"] == 65534
    if SandboxConfig().bwrap_path:
        assert pool.isolation == "namespaces"


async def test_startup_log_names_the_isolation_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowlite.sandbox")
    async with SandboxPool(SandboxConfig(size=1, isolation="process")) as started:
        assert started.describe()["caveats"]
    assert any(
        "isolation process" in r.getMessage() and "seccomp on" in r.getMessage()
        for r in caplog.records
    )


async def test_namespaces_required_but_missing_refuses_to_start() -> None:
    config = SandboxConfig(size=1, isolation="namespaces", bwrap_path="/nonexistent/bwrap")
    pool = SandboxPool(config)
    with pytest.raises(SandboxUnavailable, match="requires isolation 'namespaces'"):
        await pool.start()
    await pool.close()


async def test_auto_falls_back_to_process_isolation() -> None:
    config = SandboxConfig(size=1, isolation="auto", bwrap_path=None)
    async with SandboxPool(config) as fallback:
        assert fallback.isolation == "process"
        assert fallback.describe()["fallback_reason"] == "bubblewrap is not installed"
        await assert_healthy(fallback)


async def test_a_worker_that_cannot_start_is_reported() -> None:
    config = SandboxConfig(size=1, isolation="process", start_timeout=0.001)
    pool = SandboxPool(config)
    with pytest.raises(SandboxUnavailable, match="did not start: TimeoutError"):
        await pool.start()
    await pool.close()


# --- network, allowed per job -----------------------------------------------------------------


async def test_network_is_off_by_default_and_allowed_per_job() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = textwrap.dedent(
        f"""
        import socket
        with socket.create_connection(("127.0.0.1", {port}), timeout=2):
            pass
        return [{{"connected": True}}]
        """
    )
    try:
        async with SandboxPool(SandboxConfig(size=1, extra_modules=("socket",))) as pool:
            with pytest.raises(SandboxError) as caught:
                await pool.run(code, "all_items", [])
            assert "blocked in the sandbox" in caught.value.message
            result = await pool.run(code, "all_items", [], allow_network=True)
            assert result.items == [{"json": {"connected": True}}]
            await assert_healthy(pool)
    finally:
        listener.close()


# --- layers under the Python level, exercised directly ------------------------------------------

_SECCOMP_PROBE = """
import errno, os, socket, sys
sys.path.insert(0, sys.argv[1])
import worker
print(worker._load_seccomp(False))
results = []
for name, attempt in [
    ("socket", lambda: socket.socket()),
    ("fork", os.fork),
    ("exec", lambda: os.execv("/bin/true", ["true"])),
]:
    try:
        attempt()
        results.append(name + ":allowed")
    except OSError as exc:
        results.append(name + ":" + errno.errorcode[exc.errno])
print(" ".join(results))
"""


async def test_seccomp_denies_sockets_forks_and_exec() -> None:
    worker_dir = str(Path(__file__).resolve().parent.parent / "flowlite" / "sandbox")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _SECCOMP_PROBE, worker_dir],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    status, results = done.stdout.strip().splitlines()
    if status != "on":
        pytest.skip(f"seccomp is not available here: {status}")
    assert results == "socket:EACCES fork:EPERM exec:EPERM"
