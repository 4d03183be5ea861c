"""The server's commands: `flowlite serve`, `flowlite import`, `flowlite export`, `flowlite doctor`.

`import` and `export` work on the database directly (no running server needed; next to a running
SQLite server they wait for its writes). Litestar, SQLAlchemy and uvicorn are imported inside the
commands only, so that `flowlite run` stays fast. Exit codes: 0 ok, 1 failure, 2 invalid input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from flowlite.config import Config
    from flowlite.db import Database

__all__ = ["register"]

EXIT_FAILED = 1
EXIT_INVALID = 2
_SUFFIXES = (".json", ".yaml", ".yml")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _config(**overrides: Any) -> Config:
    from flowlite.config import ConfigError, load_config

    try:
        return load_config(overrides)
    except ConfigError as exc:
        _fail(exc.message, EXIT_INVALID)


def _data_options(function: Any) -> Any:
    function = click.option(
        "--database-url", default=None, help="Database URL (default: SQLite in the data directory)."
    )(function)
    return click.option(
        "--data-dir", default=None, help="Directory holding the database and spilled data."
    )(function)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level.lower() != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 5678).")
@_data_options
def serve(
    host: str | None, port: int | None, data_dir: str | None, database_url: str | None
) -> None:
    """Run the flowlite server (API under /api/v1, OpenAPI at /api-docs)."""
    config = _config(host=host, port=port, data_dir=data_dir, database_url=database_url)
    _setup_logging(config.log_level)
    import uvicorn

    from flowlite.app import create_app
    from flowlite.errors import FlowliteError

    try:  # refuse a database this flowlite cannot use before the server prints anything
        asyncio.run(_preflight(config))
    except FlowliteError as exc:
        _fail(exc.message, EXIT_FAILED)

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            log_level=config.log_level.lower(),
            # connections get a few seconds; running executions get shutdown_timeout (lifespan)
            timeout_graceful_shutdown=5,
            lifespan="on",
        )
    )
    try:
        server.run()
    except SystemExit:  # uvicorn exits 3 when the application fails to start
        server.started = False
    if not server.started:
        _fail("the server did not start (see the messages above)", EXIT_FAILED)


async def _preflight(config: Config) -> None:
    from flowlite.db import open_database
    from flowlite.migrations import check_revision

    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(config.url)
    try:
        await check_revision(db)
    finally:
        await db.close()


async def _open(config: Config) -> Database:
    from flowlite.db import open_database
    from flowlite.errors import FlowliteError
    from flowlite.migrations import migrate

    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(config.url)
    try:
        await migrate(db)
    except FlowliteError:
        await db.close()
        raise
    return db


def _files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            _fail(f"{name}: no such file or directory", EXIT_INVALID)
    return files


async def _import(config: Config, files: list[Path]) -> int:
    from flowlite.errors import WorkflowInvalid
    from flowlite.model import parse_document
    from flowlite.registry import Registry
    from flowlite.store import import_workflow, is_id

    registry = Registry.default()
    db = await _open(config)
    invalid = 0
    try:
        for file in files:
            try:
                document = parse_document(file.read_bytes(), filename=file.name)
                workflow_id = file.stem if is_id(file.stem) else None
                detail, outcome = await import_workflow(
                    db, document, registry, workflow_id=workflow_id
                )
            except WorkflowInvalid as exc:
                invalid += 1
                click.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
                for problem in exc.problems:
                    click.echo(f"  - {problem}", err=True)
                continue
            click.echo(f"{outcome} {detail.id} v{detail.version} {detail.name!r} ({file})")
    finally:
        await db.close()
    return invalid


@click.command("import")
@click.argument("paths", nargs=-1, required=True, metavar="FILE|DIR...")
@_data_options
def import_(paths: tuple[str, ...], data_dir: str | None, database_url: str | None) -> None:
    """Import workflow files (JSON or YAML; a directory: every such file in it).

    A file named `<workflow id>.json` updates that workflow (a new version when it changed),
    or creates it with that id; any other file creates a new workflow.
    """
    from flowlite.errors import FlowliteError

    config = _config(data_dir=data_dir, database_url=database_url)
    files = _files(paths)
    try:
        invalid = asyncio.run(_import(config, files))
    except FlowliteError as exc:
        _fail(exc.message, EXIT_FAILED)
    if invalid:
        _fail(f"{invalid} of {len(files)} file(s) are invalid and were not imported", EXIT_INVALID)


def _dump(document: dict[str, Any], fmt: str) -> str:
    if fmt == "yaml":
        import yaml

        text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return text
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


async def _export(config: Config, ids: tuple[str, ...], every: bool) -> list[tuple[str, Any]]:
    from flowlite.store import get_workflow, list_workflows

    db = await _open(config)
    try:
        if every:
            wanted: list[str] = []
            offset = 0
            while True:
                page = await list_workflows(db, sort="created_at", limit=500, offset=offset)
                wanted.extend(w.id for w in page.data)
                offset += len(page.data)
                if offset >= page.total or not page.data:
                    break
        else:
            wanted = list(ids)
        return [(i, (await get_workflow(db, i)).document) for i in wanted]
    finally:
        await db.close()


@click.command("export")
@click.option("--id", "ids", multiple=True, metavar="ID", help="A workflow to export (repeatable).")
@click.option("--all", "every", is_flag=True, help="Export every workflow.")
@click.option("--out", type=click.Path(file_okay=False), help="Write `<id>.json` files here.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True
)
@_data_options
def export(
    ids: tuple[str, ...],
    every: bool,
    out: str | None,
    fmt: str,
    data_dir: str | None,
    database_url: str | None,
) -> None:
    """Export workflows as the documents they were saved as.

    With one --id and no --out the document goes to stdout; otherwise each workflow is written
    to `<out>/<id>.json` (or `.yaml`), which `flowlite import` reads back to the same workflow.
    """
    from flowlite.errors import FlowliteError, NotFound

    if bool(ids) == every:
        _fail("choose what to export: --id ID (repeatable) or --all", EXIT_INVALID)
    if out is None and (every or len(ids) > 1):
        _fail("exporting several workflows needs --out DIR", EXIT_INVALID)
    config = _config(data_dir=data_dir, database_url=database_url)
    try:
        documents = asyncio.run(_export(config, ids, every))
    except NotFound as exc:
        _fail(exc.message, EXIT_INVALID)
    except FlowliteError as exc:
        _fail(exc.message, EXIT_FAILED)
    if out is None:
        click.echo(_dump(documents[0][1], fmt), nl=False)
        return
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    for workflow_id, document in documents:
        path = directory / f"{workflow_id}.{fmt}"
        path.write_text(_dump(document, fmt), encoding="utf-8")
        click.echo(str(path))


def register(group: click.Group) -> None:
    """Add the server commands to the `flowlite` group."""
    from flowlite.doctor import doctor

    for command in (serve, import_, export, doctor):
        group.add_command(command)
