"""The sandbox: a pool of warm, locked-down worker processes that run user Python code.

Modules, one concept each:

- :mod:`~flowlite.sandbox.config`: :class:`SandboxConfig`, :class:`CodeResult` and the errors
- :mod:`~flowlite.sandbox.pool`: :class:`SandboxPool`, which starts, hands out and replaces workers
- :mod:`~flowlite.sandbox.isolation`: how a worker is launched (bubblewrap or a plain process)
- :mod:`~flowlite.sandbox.worker`: the worker itself and the pipe protocol

Usage::

    async with SandboxPool(SandboxConfig(size=2)) as pool:
        result = await pool.run("return [{'n': len(items)}]", "all_items", items)
"""

from flowlite.sandbox.config import CodeResult, SandboxConfig, SandboxError, SandboxUnavailable
from flowlite.sandbox.pool import SandboxPool
from flowlite.sandbox.worker import DEFAULT_MODULES

__all__ = [
    "DEFAULT_MODULES",
    "CodeResult",
    "SandboxConfig",
    "SandboxError",
    "SandboxPool",
    "SandboxUnavailable",
]
