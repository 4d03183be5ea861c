"""`flowlite backup FILE` and `flowlite restore FILE`: see :mod:`flowlite.backup`.

Both read the same ``--data-dir`` / ``--database-url`` / ``FLOWLITE_*`` settings as `serve`.
Exit codes: 0 done, 1 the backup or restore failed, 2 invalid input (a missing, corrupt or too new
backup, a database in use, a Postgres URL).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from flowlite.config import Config

__all__ = ["register"]

EXIT_FAILED = 1
EXIT_INVALID = 2


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _database(data_dir: str | None, database_url: str | None) -> tuple[Config, Path]:
    from flowlite.backup import BackupError, sqlite_path
    from flowlite.config import ConfigError, load_config

    try:
        config = load_config({"data_dir": data_dir, "database_url": database_url})
        return config, sqlite_path(config.url)
    except (ConfigError, BackupError) as exc:
        _fail(exc.message, EXIT_INVALID)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in counts.items()) or "no tables"


def _data_options(function: click.decorators.FC) -> click.decorators.FC:
    function = click.option(
        "--database-url", default=None, help="Database URL (default: SQLite in the data directory)."
    )(function)
    return click.option(
        "--data-dir", default=None, help="Directory holding the database (FLOWLITE_DATA_DIR)."
    )(function)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@_data_options
def backup(file: str, force: bool, data_dir: str | None, database_url: str | None) -> None:
    """Write a consistent copy of the SQLite database to FILE, even while the server runs."""
    from flowlite.backup import BackupError, backup_database

    _, database = _database(data_dir, database_url)
    try:
        info = backup_database(database, Path(file), overwrite=force)
    except BackupError as exc:
        _fail(exc.message, EXIT_INVALID)
    except OSError as exc:
        _fail(f"cannot write {file}: {exc.strerror}", EXIT_FAILED)
    click.echo(
        f"backed up {database} to {info.path} ({info.size / 1e6:.1f} MB, schema {info.revision}, "
        f"{_counts(info.counts)}) in {info.seconds:.2f} s"
    )
    if info.key_fingerprint:
        click.echo(
            f"note: its credentials are encrypted with the key of fingerprint "
            f"{info.key_fingerprint}, which is not in the backup: keep that key (FLOWLITE_ENCRYPTION_KEY "
            "or encryption.key in the data directory) safe and apart; restore needs it",
            err=True,
        )
    spill = database.parent / "executions"
    if spill.is_dir() and any(spill.iterdir()):
        click.echo(
            f"note: large node outputs are files under {spill}; copy that directory too to keep them",
            err=True,
        )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--force",
    is_flag=True,
    help="Replace a database that already holds data (it is first copied to <data dir>/backups).",
)
@_data_options
def restore(file: str, force: bool, data_dir: str | None, database_url: str | None) -> None:
    """Restore a backup FILE into the data directory (stop the server first).

    The file must pass SQLite's integrity check, have a schema this flowlite knows (an older one
    is migrated when the server next starts), and its credentials must be encrypted with the
    configured key (FLOWLITE_ENCRYPTION_KEY or encryption.key in the data directory).
    """
    from flowlite.backup import BackupError, restore_database
    from flowlite.migrations import HEAD

    config, database = _database(data_dir, database_url)
    try:
        info = restore_database(Path(file), config, force=force)
    except BackupError as exc:
        _fail(exc.message, EXIT_INVALID)
    except OSError as exc:
        _fail(f"cannot restore into {database}: {exc.strerror}", EXIT_FAILED)
    click.echo(
        f"restored {file} into {database} (schema {info.revision}, {_counts(info.counts)}) "
        f"in {info.seconds:.2f} s"
    )
    if info.revision != HEAD:
        click.echo(f"the schema is migrated to {HEAD} when the server next starts", err=True)


def register(group: click.Group) -> None:
    """Add `backup` and `restore` to the `flowlite` group."""
    group.add_command(backup)
    group.add_command(restore)
