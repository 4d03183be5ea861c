"""The server's commands: `flowlite serve`, `flowlite import`, `flowlite export`, `flowlite doctor`.

Litestar and SQLAlchemy are imported inside the commands only, so that `flowlite run` stays fast.
"""

from __future__ import annotations

import click

__all__ = ["register"]


@click.command()
@click.option("--host", default=None, help="Address to listen on.")
@click.option("--port", type=int, default=None, help="Port to listen on.")
@click.option("--data-dir", default=None, help="Directory holding the database and spilled data.")
def serve(host: str | None, port: int | None, data_dir: str | None) -> None:
    """Run the flowlite server."""
    raise click.ClickException("not implemented yet")


def register(group: click.Group) -> None:
    """Add the server commands to the `flowlite` group."""
    group.add_command(serve)
