"""Sandbox configuration, results and errors.

UserError
└── SandboxError          the user's code failed, timed out, ran out of memory, printed or
                          returned too much, returned something that is not JSON, or killed
                          its worker; ``kind`` says which, ``details`` holds the traceback
InternalError
└── SandboxUnavailable    the pool cannot start, or the required isolation is missing
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any, Literal

from flowlite.errors import InternalError, UserError

__all__ = [
    "CodeResult",
    "ErrorKind",
    "SandboxConfig",
    "SandboxError",
    "SandboxUnavailable",
]

ErrorKind = Literal["error", "timeout", "memory", "cpu", "output", "value", "crash"]


@dataclass(frozen=True)
class SandboxConfig:
    """How many warm workers to keep and the limits every job runs under."""

    #: warm workers (a second set of the same size starts on the first job that needs network)
    size: int = 2
    #: address-space limit of a worker, in MB
    memory_mb: int = 512
    #: CPU seconds one job may use
    cpu_seconds: int = 30
    #: default wall-clock deadline of a job; a job may ask for a shorter one
    timeout: float = 60.0
    #: cap on the returned items and printed text of one job, together
    max_output_bytes: int = 16 * 1024 * 1024
    #: modules the operator allows on top of the built-in list
    extra_modules: tuple[str, ...] = ()
    #: "auto" (best available), "namespaces" (refuse to start without them) or "process"
    isolation: str = "auto"
    #: whether jobs may use the network unless they say otherwise
    allow_network: bool = False
    #: the bubblewrap binary; ``None`` when not installed
    bwrap_path: str | None = field(default_factory=lambda: shutil.which("bwrap"))
    #: seconds a new worker may take to start
    start_timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.isolation not in ("auto", "namespaces", "process"):
            raise ValueError(
                f"sandbox isolation must be auto, namespaces or process, not {self.isolation!r}"
            )
        if self.size < 1:
            raise ValueError("the sandbox needs at least one worker")
        if self.memory_mb < 64:
            raise ValueError("the sandbox memory limit must be at least 64 MB")
        if self.cpu_seconds < 1 or self.timeout <= 0:
            raise ValueError("the sandbox CPU and time limits must be positive")


@dataclass
class CodeResult:
    """What a code job returned: items ``{"json": {...}}`` and the lines it printed."""

    items: list[dict[str, Any]]
    logs: list[str]


class SandboxError(UserError):
    """The user's code failed; ``details`` holds the traceback trimmed to the user's lines."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = "error",
        details: str = "",
        item_index: int | None = None,
        logs: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.details = details
        #: for ``each_item``: the input item the code failed on
        self.item_index = item_index
        #: what the code printed before it failed
        self.logs = logs or []


class SandboxUnavailable(InternalError):
    """The sandbox pool cannot start, or the isolation the configuration requires is missing."""
