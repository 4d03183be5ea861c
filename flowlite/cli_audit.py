"""`flowlite audit verify`: check the audit log's hash chain (see :mod:`flowlite.audit`).

Exit codes: 0 the chain is intact, 1 it is broken (the first bad entry on stderr), 2 invalid
settings.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

__all__ = ["register"]


async def _verify(data_dir: str | None, database_url: str | None) -> Any:
    from flowlite.audit import verify
    from flowlite.cli_server import _open
    from flowlite.config import load_config

    db = await _open(load_config({"data_dir": data_dir, "database_url": database_url}))
    try:
        return await verify(db)
    finally:
        await db.close()


def register(main: click.Group) -> None:
    @main.group()
    def audit() -> None:
        """The audit log."""

    @audit.command("verify")
    @click.option("--data-dir", default=None, help="Directory holding the database.")
    @click.option("--database-url", default=None, help="Database URL (default: SQLite).")
    def verify(data_dir: str | None, database_url: str | None) -> None:
        """Walk the hash chain and report the first edited, deleted or moved entry."""
        from flowlite.errors import FlowliteError, UserError

        try:
            result = asyncio.run(_verify(data_dir, database_url))
        except FlowliteError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2 if isinstance(exc, UserError) else 1)
        if not result.ok:
            click.echo(
                f"error: audit log broken at entry {result.first_bad_seq}: {result.reason}",
                err=True,
            )
            sys.exit(1)
        click.echo(f"audit log intact: {result.entries} entries")
