"""The pool of warm sandbox workers and the one call that runs user code in it.

A job takes an idle worker (or starts one, up to ``size``; or waits for one), sends it the code
and the items in batches, and gives the worker back. A worker that timed out, ran out of memory,
crashed, sent something that is not a valid reply, or whose job was cancelled is killed at once
and replaced in the background, so the pool stays at its size and no job waits on a dead worker.

Workers that may use the network are a separate set (a seccomp filter or a network namespace
cannot be lifted from a running process), started when a job first asks for the network.

Workers are reused, which is what makes a job cost a pipe round trip instead of a Python start.
Each run gets fresh globals and builtins, but the modules a worker imported are shared by the
jobs it runs: code that breaks out of the Python-level restrictions (always possible in
CPython) can leave something behind for later jobs in the same worker. The OS layers still hold
for those jobs; what is exposed is the later jobs' own code and items. A worker is replaced after
a timeout, a memory error, a crash, or when its lifetime CPU budget is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import tempfile
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import msgspec

from flowlite.sandbox.config import CodeResult, SandboxConfig, SandboxError, SandboxUnavailable
from flowlite.sandbox.isolation import NOBODY, Launcher
from flowlite.sandbox.worker import DEFAULT_MODULES, HEADER, Hello, Job, Reply, Setup

__all__ = ["SandboxPool"]

logger = logging.getLogger("flowlite.sandbox")

#: items per round trip in ``each_item`` mode
BATCH = 2000
#: reply bytes allowed on top of the output budget (error message, traceback, framing)
_REPLY_SLACK = 1 << 20
_MODES = ("all_items", "each_item")


class _WorkerLost(Exception):
    """The worker died or broke the protocol during a job."""


class _Worker:
    """One worker process and its pipes."""

    def __init__(
        self, process: asyncio.subprocess.Process, network: bool, workdir: str | None
    ) -> None:
        self.process = process
        self.network = network
        self.workdir = workdir
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout

    async def call(self, payload: bytes | list[bytes], limit: int) -> bytes:
        """Send one frame, read the answer (at most ``limit`` bytes)."""
        parts = payload if isinstance(payload, list) else [payload]
        try:
            self._stdin.writelines([HEADER.pack(sum(map(len, parts))), *parts])
            await self._stdin.drain()
            (size,) = HEADER.unpack(await self._stdout.readexactly(HEADER.size))
            if size > limit:
                raise _WorkerLost("the sandbox worker sent a reply over the size limit")
            return await self._stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise _WorkerLost("the sandbox worker stopped") from exc

    def kill(self) -> None:
        """Kill the worker and anything it started (safe to call twice)."""
        if self.process.returncode is not None:
            return
        # bubblewrap takes its sandbox down with it (--die-with-parent, PID namespace); the
        # process group catches anything a process-level worker left behind. Raw signals only:
        # Popen.kill() polls first and would reap the child behind asyncio's watcher's back.
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(self.process.pid, signal.SIGKILL)

    async def reap(self) -> None:
        self.kill()
        await self.process.wait()
        if self.workdir:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)

    def exit_reason(self, config: SandboxConfig) -> SandboxError:
        """What to tell the user about a worker that died under their code."""
        code = self.process.returncode
        if code is None:
            return SandboxError("the sandbox worker stopped answering", kind="crash")
        # A signal shows as -N from a plain worker and as 128+N through bubblewrap.
        number = -code if code < 0 else code - 128 if code > 128 else 0
        if number == signal.SIGXCPU:
            return SandboxError(f"code used more than {config.cpu_seconds} CPU seconds", kind="cpu")
        if number == signal.SIGKILL:
            return SandboxError(
                "the sandbox worker was killed (SIGKILL; out of memory?)", kind="crash"
            )
        if number:
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            return SandboxError(f"the sandbox worker crashed ({name})", kind="crash")
        return SandboxError(f"the sandbox worker exited (status {code})", kind="crash")


@dataclass
class _Outcome:
    result: CodeResult | None = None
    error: SandboxError | None = None
    retire: bool = False


def _size(value: int) -> str:
    return f"{value / (1024 * 1024):g} MB" if value >= 1024 * 1024 else f"{value} bytes"


class SandboxPool:
    """Warm workers that run user code; see the module docstring."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._modules = tuple(dict.fromkeys((*DEFAULT_MODULES, *config.extra_modules)))
        self._launcher: Launcher | None = None
        self._hello: Hello | None = None
        self._fallback: str | None = None
        self._idle: dict[bool, list[_Worker]] = {False: [], True: []}
        self._count: dict[bool, int] = {False: 0, True: 0}
        self._waiters: dict[bool, deque[asyncio.Future[_Worker | None]]] = {
            False: deque(),
            True: deque(),
        }
        self._workers: set[_Worker] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._job_ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self._started = False
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode_hello = msgspec.msgpack.Decoder(Hello).decode
        self._decode_reply = msgspec.msgpack.Decoder(Reply).decode
        self._decode_result = msgspec.json.Decoder(list[dict[str, Any]]).decode

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> SandboxPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start ``size`` warm workers at the best allowed isolation level; idempotent."""
        async with self._start_lock:
            if self._started:
                return
            first = await self._first_worker()
            self._count[False] = 1
            results = await asyncio.gather(
                *(self._spawn(False) for _ in range(self.config.size - 1)),
                return_exceptions=True,
            )
            workers = [first, *(r for r in results if isinstance(r, _Worker))]
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            if failure is not None:
                for worker in workers:
                    await worker.reap()
                self._workers.clear()
                self._count[False] = 0
                raise failure
            self._idle[False].extend(workers)
            self._count[False] = len(workers)
            self._started = True
        info = self.describe()
        logger.info(
            "sandbox: %d warm worker(s), isolation %s, uid %s, seccomp %s, network %s by default",
            self.config.size,
            info["isolation"],
            info["uid"],
            info["seccomp"],
            "on" if self.config.allow_network else "off",
        )

    async def _first_worker(self) -> _Worker:
        """Start one worker at the best level allowed; the first start doubles as the probe."""
        config = self.config
        tmp_bytes = max(64 << 20, config.max_output_bytes)
        levels: list[tuple[str, str | None]] = []
        bwrap = config.bwrap_path
        bwrap_ok = bool(bwrap) and os.access(cast(str, bwrap), os.X_OK)
        if config.isolation in ("auto", "namespaces"):
            if bwrap_ok:
                levels.append(("namespaces", bwrap))
            elif config.isolation == "namespaces":
                raise SandboxUnavailable(
                    "the sandbox requires isolation 'namespaces' but bubblewrap is not "
                    f"available (bwrap_path={bwrap!r}); install the bubblewrap package"
                )
            else:
                self._fallback = "bubblewrap is not installed"
        if config.isolation in ("auto", "process"):
            levels.append(("process", None))
        for position, (level, binary) in enumerate(levels):
            self._launcher = Launcher.create(level, binary, self._modules, tmp_bytes)
            try:
                return await self._spawn(False)
            except SandboxUnavailable as exc:
                if position == len(levels) - 1:
                    self._launcher = None
                    raise
                self._fallback = str(exc)
                logger.warning("sandbox: namespaces unavailable, using process isolation: %s", exc)
        raise SandboxUnavailable("no sandbox isolation level could start")  # pragma: no cover

    async def close(self) -> None:
        """Kill every worker; jobs still running fail."""
        self._started = False
        for kind in (False, True):
            while self._waiters[kind]:
                waiter = self._waiters[kind].popleft()
                if not waiter.done():
                    waiter.set_exception(SandboxUnavailable("the sandbox pool was closed"))
            self._idle[kind].clear()
            self._count[kind] = 0
        for task in list(self._tasks):
            task.cancel()
        workers = list(self._workers)
        self._workers.clear()
        for worker in workers:
            worker.kill()
        await asyncio.gather(*(w.reap() for w in workers), *self._tasks, return_exceptions=True)

    # --- what is in force -----------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """The isolation level in force ("namespaces" or "process"); before start, the plan."""
        if self._launcher is not None:
            return self._launcher.level
        if self.config.isolation == "process":
            return "process"
        bwrap = self.config.bwrap_path
        ok = bool(bwrap) and os.access(cast(str, bwrap), os.X_OK)
        return "namespaces" if ok or self.config.isolation == "namespaces" else "process"

    def describe(self) -> dict[str, Any]:
        """The isolation and limits in force, for `flowlite doctor` and the startup log."""
        config = self.config
        info: dict[str, Any] = {
            "isolation": self.isolation,
            "requested": config.isolation,
            "started": self._started,
            "bwrap": config.bwrap_path,
            "uid": NOBODY if os.geteuid() == 0 else os.getuid(),
            "seccomp": self._hello.seccomp if self._hello else "unknown (no worker started)",
            "network": "allowed" if config.allow_network else "off unless a workflow allows it",
            "workers": config.size,
            "limits": {
                "memory_mb": config.memory_mb,
                "cpu_seconds": config.cpu_seconds,
                "timeout": config.timeout,
                "max_output_bytes": config.max_output_bytes,
                "open_files": 64,
                "processes": 0,
            },
            "modules": list(self._modules),
        }
        if self._launcher is not None:
            info.update(self._launcher.describe())
            info["isolation"] = self._launcher.level
        if self._hello is not None:
            info["uid"] = self._hello.uid
        if self._fallback:
            info["fallback_reason"] = self._fallback
        if info["isolation"] == "process":
            info["caveats"] = [
                "workers see the host's file system and network namespace: keep the data "
                "directory private (mode 0700) and prefer bubblewrap",
            ]
            if os.geteuid() != 0:
                info["caveats"].append(
                    "flowlite does not run as root, so workers run as its own user and can "
                    "read what it can read"
                )
        return info

    # --- workers --------------------------------------------------------------------------

    async def _spawn(self, network: bool) -> _Worker:
        launcher = self._launcher
        if launcher is None:
            raise SandboxUnavailable("the sandbox pool is not started")
        config = self.config
        workdir: str | None = None
        inside = launcher.workdir_inside
        if inside is None:
            workdir = inside = tempfile.mkdtemp(prefix="flowlite-sandbox-")
            if launcher.root:
                os.chown(workdir, NOBODY, NOBODY)
        process = await asyncio.create_subprocess_exec(
            *launcher.command(network),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=launcher.env(inside),
            cwd=workdir or "/",
            start_new_session=True,
        )
        worker = _Worker(process, network, workdir)
        logger.debug("sandbox: started worker %d", process.pid)
        self._workers.add(worker)
        setup = Setup(
            modules=list(self._modules),
            memory_mb=config.memory_mb,
            cpu_seconds=config.cpu_seconds,
            max_output_bytes=config.max_output_bytes,
            network=network,
            uid=NOBODY if launcher.root else -1,
            gid=NOBODY if launcher.root else -1,
            workdir=inside,
        )
        try:
            async with asyncio.timeout(config.start_timeout):
                hello = self._decode_hello(await worker.call(self._encode(setup), 1 << 20))
        except BaseException as exc:
            self._workers.discard(worker)
            worker.kill()
            stderr = b""
            assert process.stderr is not None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    stderr = await process.stderr.read(8192)
            await worker.reap()
            if isinstance(exc, asyncio.CancelledError):
                raise
            reason = stderr.decode("utf-8", "replace").strip() or type(exc).__name__
            if not stderr and str(exc):
                reason += f": {exc}"
            raise SandboxUnavailable(
                f"a sandbox worker ({launcher.level} isolation) did not start: {reason}"
            ) from exc
        if self._hello is None:
            for warning in hello.warnings:
                logger.warning("sandbox: %s", warning)
            self._hello = hello
        return worker

    async def _acquire(self, network: bool) -> _Worker:
        loop = asyncio.get_running_loop()
        while True:
            idle = self._idle[network]
            if idle:
                return idle.pop()
            if self._count[network] < self.config.size:
                self._count[network] += 1
                try:
                    return await self._spawn(network)
                except BaseException:
                    self._count[network] -= 1
                    self._wake(network, None)
                    raise
            waiter: asyncio.Future[_Worker | None] = loop.create_future()
            self._waiters[network].append(waiter)
            try:
                worker = await waiter
            except asyncio.CancelledError:
                # Handed a worker just as we were cancelled: pass it on, do not lose it.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    handed = waiter.result()
                    if handed is not None:
                        self._release(handed)
                    else:
                        self._wake(network, None)
                raise
            if worker is not None:
                return worker

    def _wake(self, network: bool, worker: _Worker | None) -> bool:
        """Hand ``worker`` (or a chance to start one) to the first waiting job."""
        waiters = self._waiters[network]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return True
        return False

    def _release(self, worker: _Worker) -> None:
        if not self._started or worker.process.returncode is not None:
            self._discard(worker)
        elif not self._wake(worker.network, worker):
            self._idle[worker.network].append(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self._workers:
            self._workers.discard(worker)
            self._count[worker.network] -= 1
        self._track(worker.reap())
        if not self._started:
            return
        if not self._wake(worker.network, None) and not worker.network:
            # Keep the warm set at its size so the next job does not pay for a start.
            self._count[False] += 1
            self._track(self._refill())

    async def _refill(self) -> None:
        try:
            worker = await self._spawn(False)
        except Exception as exc:
            self._count[False] -= 1
            self._wake(False, None)
            logger.error("sandbox: could not replace a worker: %s", exc)
            return
        if not self._started:
            self._workers.discard(worker)
            await worker.reap()
            return
        self._release(worker)

    def _track(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- jobs -----------------------------------------------------------------------------

    async def run(
        self,
        code: str,
        mode: str,
        items: list[dict[str, Any]],
        *,
        timeout: float | None = None,
        allow_network: bool | None = None,
    ) -> CodeResult:
        """Run ``code`` on ``items``; raises :class:`SandboxError` when the code fails.

        The code sees only the ``json`` of each item; the items it returns carry only ``json``.
        ``timeout`` may shorten the configured deadline, not extend it. If the awaiting task is
        cancelled, the worker running the job is killed and replaced.
        """
        if mode not in _MODES:
            raise SandboxError(f"unknown code mode {mode!r}; use all_items or each_item")
        if not self._started:
            await self.start()
        config = self.config
        network = config.allow_network if allow_network is None else allow_network
        deadline = config.timeout if timeout is None else min(timeout, config.timeout)
        jsons = [item.get("json", {}) for item in items]
        if mode == "each_item" and not jsons:
            return CodeResult(items=[], logs=[])
        step = (len(jsons) or 1) if mode == "all_items" else BATCH
        try:
            # Encoded before a worker is taken: items msgpack cannot carry fail the job alone.
            batches = [
                (start, msgspec.Raw(self._encode(jsons[start : start + step])))
                for start in range(0, max(len(jsons), 1), step)
            ]
        except (TypeError, ValueError, OverflowError) as exc:
            raise SandboxError(f"the input items cannot be passed to code: {exc}") from None
        worker = await self._acquire(network)
        keep = False
        try:
            try:
                async with asyncio.timeout(deadline):
                    outcome = await self._exchange(worker, code, mode, batches)
            except TimeoutError:
                raise SandboxError(f"code timed out after {deadline:g} s", kind="timeout") from None
            except _WorkerLost as lost:
                raise await self._lost(worker, lost) from None
            keep = not outcome.retire
            if outcome.error is not None:
                raise outcome.error
            assert outcome.result is not None
            return outcome.result
        finally:
            if keep:
                self._release(worker)
            else:
                self._discard(worker)

    async def _exchange(
        self, worker: _Worker, code: str, mode: str, batches: list[tuple[int, msgspec.Raw]]
    ) -> _Outcome:
        job_id = next(self._job_ids)
        budget = self.config.max_output_bytes
        items: list[dict[str, Any]] = []
        logs: list[str] = []
        retire = False
        for start, raw in batches:
            job = Job(
                id=job_id, code=code, mode=mode, items=cast(Any, raw), start=start, budget=budget
            )
            frame = await worker.call(self._encode(job), budget + _REPLY_SLACK)
            try:
                reply = self._decode_reply(frame)
            except msgspec.DecodeError:
                raise _WorkerLost("the sandbox worker sent an invalid reply") from None
            retire = retire or reply.retire
            if reply.logs:
                logs.extend(reply.logs.splitlines())
            if reply.kind != "ok":
                return _Outcome(error=self._error(reply, logs), retire=retire)
            try:
                returned = self._decode_result(reply.result)
            except msgspec.DecodeError:
                raise _WorkerLost("the sandbox worker sent an invalid result") from None
            items.extend({"json": value} for value in returned)
            budget -= len(reply.result) + len(reply.logs)
            if budget < 0:
                return _Outcome(error=self._too_much(logs), retire=retire)
        return _Outcome(result=CodeResult(items=items, logs=logs), retire=retire)

    def _too_much(self, logs: list[str]) -> SandboxError:
        limit = _size(self.config.max_output_bytes)
        return SandboxError(
            f"code produced more than {limit} of output (returned items and printed text)",
            kind="output",
            logs=logs[:100],
        )

    def _error(self, reply: Reply, logs: list[str]) -> SandboxError:
        index = reply.item_index if reply.item_index >= 0 else None
        if reply.kind == "memory":
            return SandboxError(
                f"code ran out of memory (limit {self.config.memory_mb} MB)",
                kind="memory",
                item_index=index,
                logs=logs,
            )
        if reply.kind == "output":
            return self._too_much(logs)
        if reply.kind in ("error", "value"):
            return SandboxError(
                reply.message,
                kind="value" if reply.kind == "value" else "error",
                details=reply.details,
                item_index=index,
                logs=logs,
            )
        return SandboxError(
            f"the sandbox worker sent an unknown reply {reply.kind!r}", kind="crash"
        )

    async def _lost(self, worker: _Worker, lost: _WorkerLost) -> SandboxError:
        # Give a dying worker a moment to finish dying, so its exit status tells why.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await worker.process.wait()
        if worker.process.returncode is None:
            worker.kill()
            return SandboxError(str(lost), kind="crash")
        return worker.exit_reason(self.config)
