"""`flowlite credentials list|rotate-key|generate-key`: see :mod:`flowlite.credentials`.

They read the same ``--data-dir`` / ``--database-url`` / ``FLOWLITE_*`` settings as `serve` and
work on the database directly (next to a running SQLite server they wait for its writes).
Exit codes: 0 done, 1 failed, 2 invalid settings or key.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from flowlite.config import Config

__all__ = ["register"]

EXIT_FAILED = 1
EXIT_INVALID = 2


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _config(data_dir: str | None, database_url: str | None) -> Config:
    from flowlite.config import ConfigError, load_config

    try:
        return load_config({"data_dir": data_dir, "database_url": database_url})
    except ConfigError as exc:
        _fail(exc.message, EXIT_INVALID)


def _data_options(function: Any) -> Any:
    function = click.option(
        "--database-url", default=None, help="Database URL (default: SQLite in the data directory)."
    )(function)
    return click.option(
        "--data-dir", default=None, help="Directory holding the database and the key file."
    )(function)


def _run(coroutine: Any) -> Any:
    from flowlite.errors import FlowliteError, UserError

    try:
        return asyncio.run(coroutine)
    except UserError as exc:
        _fail(exc.message, EXIT_INVALID)
    except FlowliteError as exc:
        _fail(exc.message, EXIT_FAILED)


async def _list(config: Config) -> list[Any]:
    from flowlite.cli_server import _open
    from flowlite.credentials import list_credentials
    from flowlite.crypto import check_key

    db = await _open(config)
    try:
        return await list_credentials(db, await check_key(db, config))
    finally:
        await db.close()


async def _rotate(config: Config) -> tuple[int, str, str | None]:
    from flowlite.cli_server import _open
    from flowlite.credentials import rotate_key
    from flowlite.crypto import KEY_FILE, Cipher, check_key, generate_key, parse_key, write_key_file

    db = await _open(config)
    try:
        old = await check_key(db, config)
        text = generate_key()
        new = Cipher(parse_key(text, "the new key"), "the new key")
        pending = config.data_dir / (KEY_FILE + ".new")
        if old.path is not None:
            # written first: a crash after the commit leaves it for the next start to pick up
            write_key_file(pending, text)
        try:
            count = await rotate_key(db, old, new, actor="cli")
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        if old.path is not None:
            os.replace(pending, old.path)
            return count, new.fingerprint, None
        return count, new.fingerprint, text
    finally:
        await db.close()


def register(main: click.Group) -> None:
    @main.group()
    def credentials() -> None:
        """Stored credentials and their encryption key."""

    @credentials.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @_data_options
    def list_(as_json: bool, data_dir: str | None, database_url: str | None) -> None:
        """List credentials: name, type, id and the secret fields set (never their values)."""
        import msgspec

        found = _run(_list(_config(data_dir, database_url)))
        if as_json:
            click.echo(json.dumps(msgspec.to_builtins(found), ensure_ascii=False))
            return
        for info in found:
            secrets = ", ".join(info.secrets) or "-"
            click.echo(f"{info.name:<24} {info.type:<13} {info.id}  secrets: {secrets}")

    @credentials.command("rotate-key")
    @_data_options
    def rotate_key(data_dir: str | None, database_url: str | None) -> None:
        """Re-encrypt every credential under a new random key, in one transaction.

        With the key file, the file is replaced. With FLOWLITE_ENCRYPTION_KEY, the new key is
        printed on stdout: set the variable to it before the server starts again.
        """
        count, fingerprint, text = _run(_rotate(_config(data_dir, database_url)))
        click.echo(
            f"re-encrypted {count} credential(s); new key fingerprint {fingerprint}", err=True
        )
        if text is not None:
            click.echo(
                "set FLOWLITE_ENCRYPTION_KEY to this new key before starting flowlite:", err=True
            )
            click.echo(text)

    @credentials.command("generate-key")
    def generate_key() -> None:
        """Print a new random key for FLOWLITE_ENCRYPTION_KEY."""
        from flowlite.crypto import generate_key as new_key

        click.echo(new_key())
