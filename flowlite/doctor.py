"""`flowlite doctor`: print the effective configuration (secrets masked) and check the setup.

Each check prints ``ok``, ``warn`` or ``FAIL`` with what it found; the exit status is 1 when a
check failed, 2 when the configuration itself is invalid.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flowlite.config import Config

__all__ = ["doctor", "run_checks"]

Check = tuple[str, str, str]  # (status, name, detail)


def _data_dir(config: Config) -> Check:
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        probe = config.data_dir / ".doctor-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return "FAIL", "data directory", f"{config.data_dir} is not writable: {exc.strerror}"
    return "ok", "data directory", f"{config.data_dir.resolve()} is writable"


async def _database(config: Config) -> list[Check]:
    from sqlalchemy import text

    from flowlite.config import mask_url
    from flowlite.db import open_database
    from flowlite.migrations import HEAD, REVISIONS, current_revision

    checks: list[Check] = []
    try:
        db = open_database(config.url)
    except Exception as exc:
        return [("FAIL", "database", f"cannot open {mask_url(config.url)}: {exc}")]
    try:
        async with db.read() as connection:
            await connection.execute(text("SELECT 1"))
            revision = await current_revision(connection)
            if db.is_sqlite:
                mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
                result = (await connection.execute(text("PRAGMA quick_check"))).scalar()
                state = "ok" if result == "ok" else "FAIL"
                checks.append((state, "sqlite file", f"journal_mode={mode}, quick_check={result}"))
        checks.insert(0, ("ok", "database", f"{db.dialect} at {mask_url(config.url)} answers"))
        if revision is None:
            checks.append(("ok", "schema", f"empty: created (revision {HEAD}) at the next start"))
        elif revision == HEAD:
            checks.append(("ok", "schema", f"revision {revision} (up to date)"))
        elif revision in REVISIONS:
            checks.append(("ok", "schema", f"revision {revision}: migrated to {HEAD} at start"))
        else:
            checks.append(
                ("FAIL", "schema", f"revision {revision} is newer than this flowlite ({HEAD})")
            )
    except Exception as exc:
        checks.append(("FAIL", "database", f"{mask_url(config.url)}: {exc}"))
    finally:
        await db.close()
    return checks


def _nodes() -> Check:
    from flowlite.registry import Registry

    try:
        count = len(Registry.default().latest())
    except Exception as exc:
        return "FAIL", "node types", f"the registry does not load: {exc}"
    return "ok", "node types", f"{count} registered"


def _sandbox(config: Config) -> Check:
    """Start one worker the way the server would, and say which isolation is in force."""
    try:
        sandbox = importlib.import_module("flowlite.sandbox")
        options = {**config.sandbox_options(), "size": 1}

        async def probe() -> dict[str, Any]:
            async with sandbox.SandboxPool(sandbox.SandboxConfig(**options)) as pool:
                await pool.run("return [{'ok': True}]", "all_items", [{"json": {}}])
                described: dict[str, Any] = pool.describe()
                return described

        described = asyncio.run(probe())
    except Exception as exc:
        return "FAIL", "sandbox", f"cannot run user code ({config.sandbox_isolation}): {exc}"
    level = described.get("isolation") or described.get("level")
    caveats = described.get("caveats") or []
    status = "warn" if caveats else "ok"
    extra = f"; caveats: {'; '.join(caveats)}" if caveats else ""
    return status, "sandbox", f"isolation {level} (asked: {config.sandbox_isolation}){extra}"


def _port(config: Config) -> Check:
    with socket.socket() as sock:
        try:
            sock.bind((config.host, config.port))
        except OSError:
            return "warn", "port", f"{config.host}:{config.port} is in use (a running server?)"
    return "ok", "port", f"{config.host}:{config.port} is free"


def run_checks(config: Config) -> list[Check]:
    """Every check, in order."""
    checks = [_data_dir(config)]
    checks.extend(asyncio.run(_database(config)))
    checks += [_nodes(), _sandbox(config), _port(config)]
    return checks


@click.command()
@click.option("--data-dir", default=None, help="Directory holding the database and spilled data.")
@click.option("--database-url", default=None, help="Database URL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(data_dir: str | None, database_url: str | None, as_json: bool) -> None:
    """Print the effective configuration (secrets masked) and check the setup."""
    from flowlite.config import ConfigError, load_config

    try:
        config = load_config({"data_dir": data_dir, "database_url": database_url})
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    settings = config.describe()
    checks = run_checks(config)
    failed = any(status == "FAIL" for status, _, _ in checks)
    if as_json:
        report: dict[str, Any] = {
            "settings": settings,
            "checks": [{"status": s, "name": n, "detail": d} for s, n, d in checks],
            "ok": not failed,
        }
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo("configuration:")
        for name, value in settings.items():
            click.echo(f"  {name} = {value}")
        click.echo("checks:")
        for status, name, detail in checks:
            click.echo(f"  {status:<4} {name}: {detail}")
        click.echo(f"python {sys.version.split()[0]}, pid {os.getpid()}")
    if failed:
        sys.exit(1)
