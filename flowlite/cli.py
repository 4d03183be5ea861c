"""The `flowlite` command line (spec section 6).

Exit codes: 0 success; 1 the execution (or command) failed; 2 the workflow or the arguments are
invalid; 130 cancelled by Ctrl-C. JSON goes to stdout, diagnostics to stderr. `flowlite run`
imports neither the web nor the database stack, so it starts fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from flowlite import __version__
from flowlite.errors import FlowliteError, UserError, WorkflowInvalid

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CANCELED = 130


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="flowlite")
def main() -> None:
    """flowlite: self-hosted workflow automation in one program."""


def _read_input(value: str | None) -> Any:
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"--input: cannot read {value[1:]!r}: {exc.strerror}", EXIT_INVALID)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"--input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            EXIT_INVALID,
        )
    if not isinstance(data, dict | list) or (
        isinstance(data, list) and not all(isinstance(v, dict) for v in data)
    ):
        fail("--input must be a JSON object (one item) or a list of objects", EXIT_INVALID)
    return data


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--input", "input_", metavar="JSON|@FILE", help="The trigger's items: an object or a list."
)
@click.option("--start", metavar="NODE", help="The node to start from (default: the only trigger).")
@click.option(
    "--output",
    type=click.Choice(["items", "full", "none"]),
    default="items",
    show_default=True,
    help="items: the last node's items; full: the execution record; none: nothing.",
)
def run(file: str, input_: str | None, start: str | None, output: str) -> None:
    """Run a workflow file in-process, with no server and no database."""
    from flowlite.local import run_file

    items = _read_input(input_)
    try:
        record, last = asyncio.run(_run_cancellable(run_file, file, items, start))
    except WorkflowInvalid as exc:
        fail(f"{file}: {exc.message}", EXIT_INVALID)
    except UserError as exc:
        fail(f"{file}: {exc.message}", EXIT_INVALID)
    except FlowliteError as exc:
        fail(f"flowlite failed: {exc.message}", EXIT_FAILED)
    from flowlite.record import record_to_dict

    if output == "full":
        click.echo(json.dumps(record_to_dict(record), ensure_ascii=False))
    elif output == "items" and record.status == "success":
        click.echo(json.dumps([it.get("json", {}) for it in last], ensure_ascii=False))
    if record.status == "success":
        return
    if record.status == "canceled":
        click.echo(f"canceled: {record.cancel_reason or 'by request'}", err=True)
        sys.exit(EXIT_CANCELED if record.cancel_reason == "interrupted" else EXIT_FAILED)
    error = record.error
    if error is not None:
        where = f"node {error.node!r}" if error.node else "workflow"
        item = f" (item {error.item_index})" if error.item_index is not None else ""
        click.echo(f"error: {where}{item}: {error.message} [{error.error_class}]", err=True)
    sys.exit(EXIT_FAILED)


async def _run_cancellable(runner: Any, file: str, items: Any, start: str | None) -> Any:
    """Run with Ctrl-C cancelling the execution (exit 130) instead of killing the process."""
    loop = asyncio.get_running_loop()
    task: asyncio.Task[Any] = asyncio.ensure_future(runner(file, items, start))

    def interrupt() -> None:
        from flowlite.local import cancel_running

        cancel_running("interrupted")

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread
        loop.add_signal_handler(signal.SIGINT, interrupt)
    return await task


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check workflow files; print every problem with its location."""
    from flowlite.model import load_workflow
    from flowlite.registry import Registry
    from flowlite.validation import problems_of

    registry = Registry.default()
    bad = 0
    for file in files:
        try:
            problems = problems_of(load_workflow(file), registry)
        except WorkflowInvalid as exc:
            problems = exc.problems
        if problems:
            bad += 1
            click.echo(f"{file}: {len(problems)} problem(s)", err=True)
            for problem in problems:
                click.echo(f"  - {problem}", err=True)
        else:
            click.echo(f"{file}: ok")
    if bad:
        sys.exit(EXIT_INVALID)


@main.group()
def nodes() -> None:
    """List node types or describe one."""


@nodes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def nodes_list(as_json: bool) -> None:
    """List every node type (built-in and plugins)."""
    from flowlite.registry import Registry

    types = Registry.default().latest()
    if as_json:
        click.echo(json.dumps([t.describe() for t in types], ensure_ascii=False))
        return
    for node_type in types:
        click.echo(
            f"{node_type.type:<22} v{node_type.version}  {node_type.category:<8} {node_type.description}"
        )


@nodes.command("describe")
@click.argument("type_name", metavar="TYPE")
@click.option("--version", "version", type=int, help="A version other than the latest.")
def nodes_describe(type_name: str, version: int | None) -> None:
    """Print a node type's parameters, inputs and outputs as JSON."""
    from flowlite.registry import Registry

    registry = Registry.default()
    node_type = registry.find(type_name, version)
    if node_type is None:
        fail(f"unknown node type {type_name!r} (see `flowlite nodes list`)", EXIT_INVALID)
    description = node_type.describe()
    description["versions"] = registry.versions(type_name)
    click.echo(json.dumps(description, indent=2, ensure_ascii=False))


def _register_server_commands() -> None:
    # the server commands import their heavy modules only when they run
    from flowlite.cli_audit import register as register_audit
    from flowlite.cli_backup import register as register_backup
    from flowlite.cli_credentials import register as register_credentials
    from flowlite.cli_server import register

    register(main)
    register_backup(main)
    register_credentials(main)
    register_audit(main)


_register_server_commands()
