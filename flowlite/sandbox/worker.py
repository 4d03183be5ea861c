"""The sandbox worker: a warm Python process that runs user code sent by the pool.

The pool starts it as ``python -I -S -B -c BOOTSTRAP`` (inside bubblewrap when the kernel allows
it) and then talks to it over its stdin/stdout pipes in length-prefixed msgpack frames:

    pool -> worker   Setup          once, the limits and the allowed modules
    worker -> pool   Hello          once, when the worker is locked down and ready
    pool -> worker   Job            a batch of items and the code to run on them
    worker -> pool   Reply          the result items (JSON), printed text, or the error

This module imports only the standard library and msgspec at import time, so a worker starts
quickly, and the pool imports it too, for the protocol structs. The lock-down in
:func:`_lock_down` runs in an order that matters: the allowed modules are imported while the
interpreter's files are still readable, resource limits are set while still allowed to, the
uid is dropped, and the seccomp filter comes last because it forbids what came before.

Nothing at the Python level here (the restricted ``__import__``, the trimmed builtins, the audit
hook) is a security boundary: Python code can always reach the real ``os`` through some module's
globals. Those layers give clear errors for honest mistakes and raise the bar; the kernel
enforces the rest (uid, rlimits, seccomp, namespaces).
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from typing import Any

import msgspec

__all__ = [
    "DEFAULT_MODULES",
    "HEADER",
    "Hello",
    "Job",
    "Reply",
    "Setup",
    "main",
]

#: Modules user code may import unless the operator adds more (a name allows its submodules).
DEFAULT_MODULES: tuple[str, ...] = (
    "base64",
    "binascii",
    "bisect",
    "calendar",
    "cmath",
    "collections",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "ipaddress",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "pprint",
    "random",
    "re",
    "secrets",
    "statistics",
    "string",
    "struct",
    "textwrap",
    "time",
    "typing",
    "unicodedata",
    "urllib.parse",
    "uuid",
    "zoneinfo",
)

#: 4-byte big-endian length before every frame.
HEADER = struct.Struct(">I")

#: The file name user code is compiled under; tracebacks keep only frames from it.
CODE_FILENAME = "<code>"
_FUNCTION = "__flowlite_main"
_OPEN_FILES = 64


class Setup(msgspec.Struct, array_like=True, frozen=True):
    """What the pool tells a new worker before anything else."""

    modules: list[str]
    memory_mb: int
    cpu_seconds: int
    max_output_bytes: int
    network: bool
    #: drop to this uid/gid after setup (-1: keep the current one)
    uid: int
    gid: int
    workdir: str


class Hello(msgspec.Struct, array_like=True, frozen=True):
    """The worker's answer to Setup: it is locked down and waits for jobs."""

    pid: int
    uid: int
    seccomp: str
    warnings: list[str]


class Job(msgspec.Struct, array_like=True, frozen=True):
    """One batch of items to run the code on. Batches of one run share an ``id``."""

    id: int
    code: str
    mode: str
    items: list[Any]
    #: index of ``items[0]`` in the node's whole input (``each_item``)
    start: int
    #: bytes of result and printed text this batch may still produce
    budget: int


class Reply(msgspec.Struct, array_like=True, frozen=True):
    """The outcome of one Job. ``kind`` is ok, error, memory, output or value."""

    kind: str = "ok"
    #: a JSON array of the returned items' ``json`` objects
    result: bytes = b""
    logs: str = ""
    message: str = ""
    details: str = ""
    item_index: int = -1
    #: the worker wants to be replaced (after a memory error, or its CPU budget is spent)
    retire: bool = False


# --- framing --------------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int) -> bytes:
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    return _read_exact(fd, size)


def _write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


# --- user-facing errors -----------------------------------------------------------------------


class _Failure(Exception):
    """A failure the worker reports as is (wrong return shape, non-JSON value, ...)."""

    def __init__(self, kind: str, message: str, item_index: int = -1) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.item_index = item_index


class _OutputTooLarge(Exception):
    """Raised inside print() once the printed text passes the output budget."""


class _Capture:
    """Stands in for sys.stdout/sys.stderr during a job: keeps printed text up to a cap."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.overflow = False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.size += len(text)
        if self.size > self.limit:
            # Remember even if the user's code swallows the exception.
            self.overflow = True
            raise _OutputTooLarge("printed output is over the limit")
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        # Lone surrogates cannot travel as UTF-8; replace them rather than fail the job.
        return "".join(self.parts).encode("utf-8", "replace").decode("utf-8")


# --- compiling and running user code ------------------------------------------------------------


def _compile(code: str, mode: str) -> Any:
    """Compile the user's code as the body of a function, keeping its line numbers."""
    import ast

    tree = ast.parse(code, filename=CODE_FILENAME, mode="exec")
    names = ["items"] if mode == "all_items" else ["item", "index"]
    function = ast.FunctionDef(
        name=_FUNCTION,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=name) for name in names],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=tree.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        lineno=1,
        col_offset=0,
    )
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    return compile(module, CODE_FILENAME, "exec", dont_inherit=True)


def _trim(exception: Any, seen: set[int] | None = None) -> None:
    """Keep only the user's frames in a TracebackException and its causes."""
    import traceback

    seen = seen if seen is not None else set()
    if exception is None or id(exception) in seen:
        return
    seen.add(id(exception))
    frames = []
    for frame in exception.stack:
        if frame.filename == CODE_FILENAME:
            if frame.name == _FUNCTION:
                frame.name = "<module>"
            frames.append(frame)
    exception.stack = traceback.StackSummary.from_list(frames)
    _trim(exception.__cause__, seen)
    _trim(exception.__context__, seen)
    for nested in getattr(exception, "exceptions", None) or ():
        _trim(nested, seen)


def _describe_exception(error: BaseException) -> tuple[str, str]:
    """The last line and the trimmed traceback of an exception raised by user code."""
    import traceback

    summary = traceback.TracebackException.from_exception(error, lookup_lines=False)
    _trim(summary)
    details = "".join(summary.format())
    lines = [line for line in details.strip().splitlines() if line.strip()]
    message = lines[-1].strip() if lines else type(error).__name__
    if isinstance(error, SyntaxError) and error.lineno:
        message = f"{message} (line {error.lineno})"
    return message[:2000], details[-20000:]


def _not_json(value: Any) -> Any:
    raise _Failure("value", f"code returned a value that is not JSON: {type(value).__name__}")


def _json_of(value: Any, index: int) -> dict[str, Any]:
    """The json object of one returned item: ``{"json": {...}}`` or a plain dict."""
    if not isinstance(value, dict):
        raise _Failure(
            "error",
            f"code must return dicts (items), but returned a {type(value).__name__}",
            index,
        )
    if "json" in value:
        inner = value["json"]
        if not isinstance(inner, dict):
            raise _Failure(
                "error",
                f"the 'json' of a returned item must be a dict, not {type(inner).__name__}",
                index,
            )
        return inner
    return value


class _Runner:
    """Runs jobs; holds the compiled-code cache and the state of the job in progress."""

    def __init__(self, setup: Setup, guard: list[bool]) -> None:
        import builtins
        import json

        self._setup = setup
        self._guard = guard
        self._allowed = tuple(setup.modules)
        self._real_import = builtins.__import__
        self._builtins = self._safe_builtins(builtins.__dict__)
        self._cache: dict[tuple[str, str], Any] = {}
        self._job_id = -1
        self._function: Any = None
        self._encode = json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_not_json
        ).encode

    def _safe_builtins(self, real: dict[str, Any]) -> dict[str, Any]:
        removed = {
            "open",
            "exec",
            "eval",
            "compile",
            "breakpoint",
            "input",
            "help",
            "exit",
            "quit",
            "copyright",
            "credits",
            "license",
            "__loader__",
            "__spec__",
        }
        safe = {name: value for name, value in real.items() if name not in removed}
        safe["__import__"] = self._import
        return safe

    def _allows(self, name: str) -> bool:
        return any(name == allowed or name.startswith(allowed + ".") for allowed in self._allowed)

    def _import(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        if level:
            raise ImportError("relative imports are not available in code")
        # A parent package of an allowed module ("urllib" for "urllib.parse") may be named,
        # but only to reach allowed submodules through it.
        parent_only = not self._allows(name) and any(
            allowed.startswith(name + ".") for allowed in self._allowed
        )
        if not self._allows(name) and not (parent_only and (fromlist or "." in name)):
            raise ImportError(
                f"module {name!r} is not allowed in code; allowed: {', '.join(self._allowed)}"
            )
        if parent_only:
            for entry in fromlist or ():
                if not self._allows(f"{name}.{entry}"):
                    raise ImportError(f"module '{name}.{entry}' is not allowed in code")
        return self._real_import(name, globals, locals, fromlist, 0)

    def _prepare(self, job: Job) -> Any:
        if job.id == self._job_id:
            return self._function
        import linecache

        key = (job.mode, job.code)
        compiled = self._cache.get(key)
        if compiled is None:
            if len(self._cache) > 64:
                self._cache.clear()
            compiled = self._cache[key] = _compile(job.code, job.mode)
        lines = job.code.splitlines(keepends=True)
        linecache.cache[CODE_FILENAME] = (len(job.code), None, lines, CODE_FILENAME)
        # A fresh globals and builtins per run: one run cannot leave names for the next.
        namespace: dict[str, Any] = {
            "__builtins__": dict(self._builtins),
            "__name__": "__flowlite_code__",
        }
        self._job_id = -1
        exec(compiled, namespace)  # noqa: S102 - this is the sandbox
        self._function = namespace[_FUNCTION]
        self._job_id = job.id
        return self._function

    def _call(self, function: Any, job: Job, position: list[int]) -> list[dict[str, Any]]:
        if job.mode == "all_items":
            returned = function(job.items)
            if returned is None:
                raise _Failure("error", "code returned nothing; end it with e.g. `return items`")
            if isinstance(returned, dict):
                returned = [returned]
            if not isinstance(returned, list | tuple):
                raise _Failure(
                    "error", f"code must return a list of items, not {type(returned).__name__}"
                )
            return [_json_of(value, index) for index, value in enumerate(returned)]
        out: list[dict[str, Any]] = []
        start = job.start
        for offset, item in enumerate(job.items):
            position[0] = start + offset
            returned = function(item, start + offset)
            if returned is None:
                continue
            if isinstance(returned, list | tuple):
                out.extend(_json_of(value, start + offset) for value in returned)
            else:
                out.append(_json_of(returned, start + offset))
        return out

    def run(self, job: Job) -> Reply:
        capture = _Capture(job.budget)
        saved = sys.stdout, sys.stderr
        position = [-1]
        sys.stdout = sys.stderr = capture
        self._guard[0] = True
        try:
            try:
                function = self._prepare(job)
                out = self._call(function, job, position)
                try:
                    result = self._encode(out).encode("utf-8")
                except (ValueError, TypeError) as error:  # NaN, a tuple as a key, a cycle
                    raise _Failure(
                        "value", f"code returned a value that is not JSON: {error}"
                    ) from None
                if capture.overflow or len(result) + capture.size > job.budget:
                    raise _Failure("output", "output too large")
                return Reply(result=result, logs=capture.text())
            except _Failure as failure:
                index = failure.item_index if failure.item_index >= 0 else position[0]
                return Reply(
                    kind=failure.kind,
                    message=failure.message,
                    logs=capture.text(),
                    item_index=index,
                )
            except MemoryError:
                self._job_id = -1
                return Reply(kind="memory", item_index=position[0], retire=True)
            except UnicodeEncodeError:
                return Reply(kind="value", message="code returned text that is not valid Unicode")
            except BaseException as error:  # the user's code may raise anything, even SystemExit
                if capture.overflow:
                    return Reply(kind="output", message="output too large")
                message, details = _describe_exception(error)
                return Reply(
                    kind="error",
                    message=message,
                    details=details,
                    logs=capture.text(),
                    item_index=position[0],
                )
        finally:
            self._guard[0] = False
            sys.stdout, sys.stderr = saved
            if capture.overflow:
                capture.parts.clear()


# --- lock-down ------------------------------------------------------------------------------

#: Syscalls user code has no business making; seccomp answers them with EPERM.
_DENIED_SYSCALLS = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "personality",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "mknod",
    "mknodat",
)

_CLONE_THREAD = 0x00010000


def _load_seccomp(network: bool) -> str:
    """Install the seccomp filter; returns "on" or why it is off."""
    import errno

    try:
        import pyseccomp as seccomp  # type: ignore[import-untyped]
    except Exception as exc:  # missing package or libseccomp
        return f"off ({type(exc).__name__}: {exc})"
    try:
        denied = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        for name in _DENIED_SYSCALLS:
            try:
                denied.add_rule(eperm, name)
            except Exception:  # noqa: S112 - a syscall this architecture does not have
                continue
        # clone3 hides its flags in memory seccomp cannot read: make libc fall back to clone,
        # then allow clone only for threads (RLIMIT_NPROC stops those too).
        denied.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        denied.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0))
        if not network:
            denied.add_rule(seccomp.ERRNO(errno.EACCES), "socket")
        denied.load()
    except Exception as exc:
        return f"off ({type(exc).__name__}: {exc})"
    return "on"


def _set_limits(setup: Setup) -> None:
    import resource
    import signal

    megabytes = setup.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (megabytes, megabytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (_OPEN_FILES, _OPEN_FILES))
    # No processes and no threads for the user's code; root ignores this, nobody does not.
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    size = max(setup.max_output_bytes, 1 << 20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A write past RLIMIT_FSIZE should be an OSError for the code, not a dead worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class _CpuBudget:
    """RLIMIT_CPU per job in a reused worker.

    The limit counts a process's whole life, so before each job the soft limit moves to "used
    so far + cpu_seconds"; the hard limit caps a worker's life at a few jobs' worth, after
    which it asks to be replaced. Passing the soft limit kills the worker with SIGXCPU.
    """

    LIFETIME_JOBS = 8

    def __init__(self, cpu_seconds: int) -> None:
        import resource

        self._resource = resource
        self._seconds = cpu_seconds
        self._hard = self._used() + cpu_seconds * self.LIFETIME_JOBS + 1
        resource.setrlimit(resource.RLIMIT_CPU, (self._hard, self._hard))

    def _used(self) -> int:
        usage = self._resource.getrusage(self._resource.RUSAGE_SELF)
        return int(usage.ru_utime + usage.ru_stime) + 1

    def arm(self) -> None:
        soft = min(self._used() + self._seconds, self._hard)
        self._resource.setrlimit(self._resource.RLIMIT_CPU, (soft, self._hard))

    def spent(self) -> bool:
        return self._used() + self._seconds > self._hard


def _drop_privileges(setup: Setup) -> None:
    if setup.uid < 0:
        return
    os.setgroups([])
    os.setresgid(setup.gid, setup.gid, setup.gid)
    os.setresuid(setup.uid, setup.uid, setup.uid)
    if os.getresuid() != (setup.uid,) * 3 or os.getresgid() != (setup.gid,) * 3:
        raise RuntimeError("could not drop privileges")


def _blocked_imports(network: bool) -> set[str]:
    """Modules no job may import, even when the operator allowed them."""
    blocked = {
        "ctypes",
        "_ctypes",
        "cffi",
        "subprocess",
        "_posixsubprocess",
        "multiprocessing",
        "_multiprocessing",
        "pty",
        "resource",
        "gc",
        "pickle",
        "_pickle",
    }
    if not network:
        blocked |= {"socket", "_socket", "ssl", "_ssl", "select", "selectors", "asyncio"}
    return blocked


def _audit_hook(guard: list[bool], setup: Setup) -> Any:
    """An audit hook that, while a job runs, refuses what user code should never do."""
    denied = (
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "subprocess.",
        "ctypes.",
        "sys.addaudithook",
        "resource.",
        "pty.",
        "winreg.",
    ) + (() if setup.network else ("socket.",))
    blocked_imports = _blocked_imports(setup.network)
    workdir = os.path.realpath(setup.workdir)
    writes = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not guard[0]:
            return
        if event == "import":
            if str(args[0]).partition(".")[0] in blocked_imports:
                raise ImportError(f"import of {args[0]!r} is blocked in the sandbox")
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & writes
            )
            if isinstance(path, int):
                raise PermissionError("opening file descriptors is not allowed in code")
            if writing:
                target = os.path.realpath(os.fsdecode(path))
                if target != workdir and not target.startswith(workdir + os.sep):
                    raise PermissionError(f"code may only write files under {setup.workdir}")
        elif event.startswith(denied):
            raise PermissionError(f"{event} is not allowed in code")

    return hook


def _lock_down(setup: Setup, guard: list[bool]) -> tuple[Hello, _CpuBudget]:
    import importlib

    warnings: list[str] = []
    # Import everything allowed now: after the uid drop the interpreter's own files may be
    # unreadable (a Python under /root), and a warm import makes the first job fast.
    blocked = _blocked_imports(setup.network)
    for name in setup.modules:
        if name.partition(".")[0] in blocked:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            warnings.append(f"module {name!r} cannot be imported: {type(exc).__name__}: {exc}")
    import ast  # noqa: F401 - used by _compile, import before the lock-down
    import json  # noqa: F401
    import linecache  # noqa: F401
    import traceback  # noqa: F401

    # pyseccomp drags in ctypes, subprocess, threading, _socket...: loaded before the uid drop
    # (its files may become unreadable), and forgotten again once the filter is in.
    before = set(sys.modules)
    with contextlib.suppress(Exception):  # _load_seccomp reports why it is missing
        import pyseccomp  # noqa: F401
    os.chdir(setup.workdir)
    _set_limits(setup)
    budget = _CpuBudget(setup.cpu_seconds)
    _drop_privileges(setup)
    forget = set(sys.modules) - before
    seccomp = _load_seccomp(setup.network)
    for name in list(sys.modules):
        if name in forget or name.partition(".")[0] in blocked:
            del sys.modules[name]
    sys.addaudithook(_audit_hook(guard, setup))
    return Hello(pid=os.getpid(), uid=os.getuid(), seccomp=seccomp, warnings=warnings), budget


def main() -> None:
    """Serve jobs on stdin/stdout until the pool closes the pipe."""
    # The protocol moves to private descriptors; fds 0-2 become /dev/null, so what user code
    # writes to fd 1 or 2 (1 GB of it, say) goes nowhere instead of into the protocol.
    inbound, outbound = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    keep = {0, 1, 2, inbound, outbound}
    for fd in range(3, 256):
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    sys.path[:] = [entry for entry in sys.path if entry != os.path.dirname(__file__)]

    setup = msgspec.msgpack.decode(_read_frame(inbound), type=Setup)
    guard = [False]
    hello, budget = _lock_down(setup, guard)
    runner = _Runner(setup, guard)
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(Job).decode
    _write_frame(outbound, encode(hello))
    while True:
        try:
            frame = _read_frame(inbound)
        except EOFError:
            return
        try:
            job = decode(frame)
        except MemoryError:  # the items alone do not fit under the memory limit
            _write_frame(outbound, encode(Reply(kind="memory", retire=True)))
            return
        del frame
        budget.arm()
        reply = runner.run(job)
        if budget.spent() and not reply.retire:
            reply = msgspec.structs.replace(reply, retire=True)
        _write_frame(outbound, encode(reply))
