"""Running workflow files in-process, for `flowlite run`: no server, no database.

Sub-workflows are found by file path (relative to the calling workflow's file); user code runs in
a sandbox pool started on first use and closed at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from flowlite.errors import NotFound
from flowlite.executor import Engine, Execution, last_items
from flowlite.model import Workflow, load_workflow
from flowlite.record import ExecutionRecord, Mode
from flowlite.registry import Registry
from flowlite.sdk import Item, as_items

__all__ = ["FileResolver", "LazySandbox", "cancel_running", "run_file"]

_current: list[Execution] = []


class FileResolver:
    """Finds sub-workflows and error workflows as files next to the calling workflow."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._paths: dict[int, Path] = {}

    def remember(self, workflow: Workflow, path: Path) -> None:
        self._paths[id(workflow)] = path

    async def __call__(
        self, reference: str, *, caller: Workflow | None
    ) -> tuple[str | None, Workflow]:
        base = (
            self._paths.get(id(caller), self.root / "_") if caller is not None else self.root / "_"
        )
        candidates = [Path(reference)] if os.path.isabs(reference) else [base.parent / reference]
        if not Path(reference).suffix:
            candidates += [
                base.parent / f"{reference}{suffix}" for suffix in (".json", ".yaml", ".yml")
            ]
        for path in candidates:
            if path.is_file():
                workflow = load_workflow(path)
                self.remember(workflow, path)
                return str(path), workflow
        raise NotFound(f"no workflow file {reference!r} next to {base.parent}")


class LazySandbox:
    """The sandbox pool, started only when a `code` node first needs it."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def __call__(
        self, code: str, mode: str, items: list[Item], *, timeout: float | None, allow_network: bool
    ) -> tuple[list[Item], list[str]]:
        async with self._lock:
            if self._pool is None:
                from flowlite.config import load_config
                from flowlite.sandbox import SandboxConfig, SandboxPool

                options = load_config().sandbox_options()
                # one warm worker is enough for a single run unless the operator asks for more
                if "FLOWLITE_SANDBOX_SIZE" not in os.environ:
                    options["size"] = 1
                pool = SandboxPool(SandboxConfig(**options))
                await pool.start()
                self._pool = pool
        result = await self._pool.run(
            code, mode, items, timeout=timeout, allow_network=allow_network
        )
        return result.items, result.logs

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def cancel_running(reason: str) -> None:
    for execution in list(_current):
        execution.cancel(reason)


async def run_file(file: str, items: Any, start: str | None) -> tuple[ExecutionRecord, list[Item]]:
    """Load, validate and run a workflow file; returns the record and the last node's items."""
    path = Path(file)
    workflow = load_workflow(path)
    resolver = FileResolver(path.parent)
    resolver.remember(workflow, path)
    sandbox = LazySandbox()
    engine = Engine(
        Registry.default(),
        resolver=resolver,
        code_runner=sandbox,
        timezone=os.environ.get("FLOWLITE_TIMEZONE", "UTC") or "UTC",
    )
    execution = engine.prepare(
        workflow,
        workflow_id=str(path),
        mode=Mode.CLI,
        items=as_items(items) if items is not None else None,
        start=start,
    )
    _current.append(execution)
    try:
        record = await execution.run()
    finally:
        _current.remove(execution)
        await sandbox.close()
    return record, last_items(record, execution.finish_order)
