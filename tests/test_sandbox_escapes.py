"""Escape attempts against the real sandbox pool.

The code here is written as an attacker would: it does not stop at ``import os`` failing but
digs the real ``os`` module and the real builtins out of the interpreter, which Python code can
always do. What must hold is the layers under Python: the uid, the namespaces, rlimits, seccomp
and the pool's own deadline. Every attempt ends in a clear :class:`SandboxError` (or a result
that shows nothing leaked), the test process is unaffected, and the next job on the same pool
works.

Network attempts only ever target 127.0.0.1, where the test itself listens.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from flowlite.sandbox import SandboxConfig, SandboxError, SandboxPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "flowlite-test-secret-4b1d"

#: the real ``os`` module and the real builtins, the way an attacker reaches them
DIG = textwrap.dedent(
    """\
    os = __import__("random")._os
    real = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "catch_warnings"]
    builtins = real[0]()._module.__builtins__
    """
)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["namespaces", "process"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[SandboxPool]:
    """The suite runs against each isolation level this machine has."""
    config = SandboxConfig(size=2, timeout=20, isolation=request.param)
    if config.isolation == "namespaces" and not config.bwrap_path:
        pytest.skip("bubblewrap is not installed")
    # Secrets in the server's environment must not reach workers.
    os.environ["FLOWLITE_TEST_SECRET"] = SECRET
    os.environ["DATABASE_URL"] = f"sqlite:///{SECRET}.db"
    try:
        async with SandboxPool(config) as started:
            yield started
    finally:
        del os.environ["FLOWLITE_TEST_SECRET"], os.environ["DATABASE_URL"]


async def run(pool: SandboxPool, code: str, *values: dict[str, Any], **options: Any) -> Any:
    result = await pool.run(DIG + code, "all_items", [{"json": v} for v in values], **options)
    return [item["json"] for item in result.items]


async def fails(pool: SandboxPool, code: str, *values: dict[str, Any], **options: Any) -> str:
    """Run an attempt that must fail; returns the error message, checks the pool recovered."""
    with pytest.raises(SandboxError) as caught:
        await run(pool, code, *values, **options)
    healthy = await pool.run("return [{'ok': True}]", "all_items", [])
    assert healthy.items == [{"json": {"ok": True}}]
    return caught.value.message


def process_level_as_user(pool: SandboxPool) -> bool:
    """Process isolation without root runs workers as the server's own user."""
    return pool.isolation == "process" and os.geteuid() != 0


async def test_the_dig_reaches_real_os_but_not_more(pool: SandboxPool) -> None:
    # The premise of this suite: Python-level restrictions alone would not hold.
    (found,) = await run(
        pool, "return [{'getpid': callable(os.getpid), 'open': 'open' in builtins}]"
    )
    assert found == {"getpid": True, "open": True}


# --- environment and files --------------------------------------------------------------------


async def test_environment_holds_no_secrets(pool: SandboxPool) -> None:
    (env,) = await run(pool, "return [dict(os.environ)]")
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PWD"}
    assert SECRET not in repr(env)


async def test_proc_environ_of_init_and_parent_are_unreadable(pool: SandboxPool) -> None:
    if process_level_as_user(pool):
        pytest.xfail("process isolation as the server's own user cannot hide /proc/<pid>/environ")
    code = textwrap.dedent(
        """
        out = {}
        for pid in (1, os.getppid(), items[0]["server"]):
            try:
                with builtins["open"](f"/proc/{pid}/environ", "rb") as file:
                    out[str(pid)] = file.read().decode("utf-8", "replace")
            except OSError as exc:
                out[str(pid)] = type(exc).__name__
        return [out]
        """
    )
    (seen,) = await run(pool, code, {"server": os.getpid()})
    assert SECRET not in repr(seen)
    assert seen[str(os.getpid())] in ("FileNotFoundError", "PermissionError")


async def test_data_directory_and_database_are_out_of_reach(
    pool: SandboxPool, tmp_path: Path
) -> None:
    if process_level_as_user(pool):
        pytest.xfail("process isolation as the server's own user shares its file access")
    data = tmp_path / "data"
    data.mkdir()
    database = data / "flowlite.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("create table secrets (value text)")
        connection.execute("insert into secrets values (?)", (SECRET,))
    connection.close()
    code = textwrap.dedent(
        """
        out = {}
        try:
            out["listing"] = os.listdir(items[0]["data"])
        except OSError as exc:
            out["listing"] = type(exc).__name__
        try:
            with builtins["open"](items[0]["database"], "rb") as file:
                out["database"] = file.read().decode("latin-1")
        except OSError as exc:
            out["database"] = type(exc).__name__
        return [out]
        """
    )
    (seen,) = await run(pool, code, {"data": str(data), "database": str(database)})
    assert seen["listing"] in ("FileNotFoundError", "PermissionError")
    assert seen["database"] in ("FileNotFoundError", "PermissionError")


async def test_namespaces_hide_the_repository_and_host(pool: SandboxPool) -> None:
    if pool.isolation != "namespaces":
        pytest.skip("only namespaces give workers their own view of the file system")
    repository = Path(__file__).resolve().parents[1]
    code = textwrap.dedent(
        """
        out = {}
        for path in items[0]["paths"]:
            try:
                with builtins["open"](path, "rb"):
                    out[path] = "read"
            except OSError as exc:
                out[path] = type(exc).__name__
        out["root"] = sorted(os.listdir("/"))
        return [out]
        """
    )
    paths = [str(repository / "pyproject.toml"), "/etc/shadow", "/root/.bash_history"]
    (seen,) = await run(pool, code, {"paths": paths})
    assert all(seen[path] == "FileNotFoundError" for path in paths), seen
    assert "home" not in seen["root"] and "var" not in seen["root"]


async def test_system_directories_are_read_only(pool: SandboxPool) -> None:
    code = textwrap.dedent(
        """
        out = {}
        for path in ("/usr/flowlite-escape", "/etc/flowlite-escape", "/flowlite-escape"):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                os.close(fd)
                out[path] = "written"
            except OSError as exc:
                out[path] = type(exc).__name__
        return [out]
        """
    )
    (seen,) = await run(pool, code)
    assert "written" not in seen.values()


async def test_own_working_directory_is_writable(pool: SandboxPool) -> None:
    code = textwrap.dedent(
        """
        with builtins["open"]("scratch.txt", "w") as file:
            file.write("scratch")
        with builtins["open"]("scratch.txt") as file:
            text = file.read()
        return [{"cwd": os.getcwd(), "text": text}]
        """
    )
    (seen,) = await run(pool, code)
    assert seen["text"] == "scratch"
    assert seen["cwd"] != os.getcwd()


async def test_inherited_file_descriptors_are_closed(pool: SandboxPool) -> None:
    marker = open(__file__, "rb")  # noqa: SIM115 - must stay open while the worker looks
    try:
        (seen,) = await run(
            pool, "return [{'fds': sorted(int(fd) for fd in os.listdir('/proc/self/fd'))}]"
        )
    finally:
        marker.close()
    # stdin/stdout/stderr (/dev/null), the two protocol pipes, and listdir's own descriptor
    assert len(seen["fds"]) <= 6


async def test_runs_as_nobody_when_root(pool: SandboxPool) -> None:
    if os.geteuid() != 0:
        pytest.skip("the uid drop happens only when flowlite runs as root")
    (seen,) = await run(
        pool, "return [{'uid': os.getresuid(), 'gid': os.getresgid(), 'groups': os.getgroups()}]"
    )
    assert seen == {"uid": [65534] * 3, "gid": [65534] * 3, "groups": []}


# --- network ----------------------------------------------------------------------------------


async def test_no_socket_to_loopback(pool: SandboxPool) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        for module in ("socket", "_socket"):
            code = f'net = builtins["__import__"]("{module}")\nnet.socket().connect(("127.0.0.1", {port}))'
            message = await fails(pool, code)
            assert "blocked in the sandbox" in message or "not allowed in code" in message
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


async def test_network_namespace_has_only_loopback(pool: SandboxPool) -> None:
    if pool.isolation != "namespaces":
        pytest.skip("process isolation shares the host's network namespace (seccomp denies socket)")
    code = textwrap.dedent(
        """
        with builtins["open"]("/proc/net/dev") as file:
            lines = file.read().splitlines()[2:]
        return [{"interfaces": [line.split(":")[0].strip() for line in lines]}]
        """
    )
    (seen,) = await run(pool, code)
    assert seen["interfaces"] == ["lo"]


# --- processes and signals --------------------------------------------------------------------


async def test_fork_bomb(pool: SandboxPool) -> None:
    message = await fails(pool, "while True:\n    os.fork()")
    assert message == "PermissionError: os.fork is not allowed in code"


async def test_subprocess_and_exec(pool: SandboxPool) -> None:
    assert "not allowed in code" in await fails(pool, "os.system('id')")
    assert "not allowed in code" in await fails(pool, "os.execv('/bin/sh', ['sh'])")
    assert "blocked in the sandbox" in await fails(pool, "builtins['__import__']('subprocess')")


async def test_kill_the_parent(pool: SandboxPool) -> None:
    code = "os.kill(items[0]['server'], 9)"
    assert "os.kill is not allowed" in await fails(pool, code, {"server": os.getpid()})
    assert "os.kill is not allowed" in await fails(pool, "os.kill(os.getppid(), 9)")
    assert "os.killpg is not allowed" in await fails(pool, "os.killpg(0, 9)")


async def test_ctypes(pool: SandboxPool) -> None:
    assert "ImportError: module 'ctypes' is not allowed" in await fails(pool, "import ctypes")
    message = await fails(pool, "builtins['__import__']('ctypes')")
    assert message == "ImportError: import of 'ctypes' is blocked in the sandbox"


async def test_disallowed_module(pool: SandboxPool) -> None:
    assert "module 'os' is not allowed" in await fails(pool, "import os")
    assert "module 'shutil' is not allowed" in await fails(pool, "__import__('shutil')")


# --- resources --------------------------------------------------------------------------------


async def test_allocate_10_gb(pool: SandboxPool) -> None:
    assert await fails(pool, "x = bytearray(10 * 1024 ** 3)") == (
        "code ran out of memory (limit 512 MB)"
    )
    grow = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))"
    assert await fails(pool, grow) == "code ran out of memory (limit 512 MB)"


async def test_infinite_loop(pool: SandboxPool) -> None:
    assert await fails(pool, "while True:\n    pass", timeout=1) == "code timed out after 1 s"
    stubborn = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    assert await fails(pool, stubborn, timeout=1) == "code timed out after 1 s"


async def test_one_gigabyte_to_stdout(pool: SandboxPool) -> None:
    code = "for _ in range(1024):\n    print('x' * (1 << 20))\nreturn []"
    assert "of output" in await fails(pool, code)
    # Straight to file descriptors 1 and 2: they are /dev/null, not the protocol pipe.
    raw = "chunk = b'x' * (1 << 20)\nfor _ in range(512):\n    os.write(1, chunk)\n    os.write(2, chunk)\nreturn [{'ok': True}]"
    assert await run(pool, raw) == [{"ok": True}]


async def test_garbage_into_the_protocol_pipe(pool: SandboxPool) -> None:
    code = textwrap.dedent(
        """
        for fd in range(3, 16):
            try:
                os.write(fd, b"\\xff" * 64)
            except OSError:
                pass
        return []
        """
    )
    message = await fails(pool, code)
    assert "sandbox worker" in message


# --- what comes back --------------------------------------------------------------------------


async def test_pickle_tricks_on_the_return_value(pool: SandboxPool) -> None:
    evil = textwrap.dedent(
        """
        class Evil:
            def __reduce__(self):
                return (os.system, ("touch /tmp/flowlite-pwned",))
        """
    )
    assert await fails(pool, evil + "return [{'x': Evil()}]") == (
        "code returned a value that is not JSON: Evil"
    )
    assert "returned a Evil" in await fails(pool, evil + "return [Evil()]")
    # A dict subclass comes back as a plain dict: nothing of the class crosses the pipe.
    subclass = evil.replace("class Evil:", "class Evil(dict):")
    returned = await run(pool, subclass + "return [Evil(a=1)]")
    assert returned == [{"a": 1}]
    assert type(returned[0]) is dict
    assert not Path("/tmp/flowlite-pwned").exists()


async def test_non_serializable_return(pool: SandboxPool) -> None:
    message = await fails(pool, "return [{'gen': (i for i in range(3))}]")
    assert message == "code returned a value that is not JSON: generator"
    message = await fails(pool, "return [{'module': os}]")
    assert message == "code returned a value that is not JSON: module"


async def test_the_pool_is_whole_after_the_suite(pool: SandboxPool) -> None:
    info = pool.describe()
    assert info["started"] is True
    assert len(pool._workers) <= pool.config.size
    result = await pool.run("return {'i': index}", "each_item", [{"json": {}}] * 3)
    assert [i["json"]["i"] for i in result.items] == [0, 1, 2]
