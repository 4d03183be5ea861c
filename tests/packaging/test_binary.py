"""The one-file binary, as a user gets it: `--version`, `run` on example files, and `serve` on a
fresh data directory (a workflow with a `code` node run through the API, a webhook call, the editor's
pages, a backup and a restore with the binary, a clean stop); an older data directory is migrated
after a copy, a newer one refused.

The binary is built once per session (see conftest.py); these tests are slow on purpose."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from flowlite import __version__
from flowlite.migrations import HEAD
from tests.packaging.conftest import CODE_WORKFLOW, ROOT, VENV_FLOWLITE, Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WEBHOOK_WORKFLOW: dict[str, Any] = {
    "name": "webhook in the binary",
    "nodes": [
        {
            "name": "Hook",
            "type": "webhook",
            "parameters": {"path": "smoke", "method": "POST", "respond": "last_node"},
        },
        {
            "name": "Double",
            "type": "code",
            "parameters": {"code": "return [{'doubled': items[0]['body']['n'] * 2}]"},
        },
    ],
    "connections": [{"from": "Hook", "to": "Double"}],
}


ZONED_WORKFLOW: dict[str, Any] = {
    "name": "time zones in the binary",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {
            "name": "Format",
            "type": "date_time",
            "parameters": {
                "operation": "format",
                "field": "when",
                "timezone": "Europe/Berlin",
                "format": "%Y-%m-%d %H:%M %Z",
            },
        },
    ],
    "connections": [{"from": "Start", "to": "Format"}],
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWLITE_", "PYTHON"))}
    # the binary must not lean on the test's virtualenv or any Python on PATH
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def run(binary: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=kwargs.pop("env", None) or clean_env(),
        cwd=kwargs.pop("cwd", ROOT),
        check=False,
        **kwargs,
    )


def sandbox_workers(binary: Path) -> set[int]:
    """Process ids of running sandbox workers started from this binary."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if "__sandbox-worker__" in args and str(binary) in args:
            found.add(int(entry.name))
    return found


def test_version(binary: Path) -> None:
    done = run(binary, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"flowlite, version {__version__}"


def test_run_example_files(binary: Path, tmp_path: Path) -> None:
    hello = run(binary, "run", "examples/hello.json")
    assert hello.returncode == 0, hello.stderr
    assert json.loads(hello.stdout) == [{"greeting": "Hello, world!"}]
    # a code node: sandbox workers started from the binary itself
    code = run(binary, "run", "examples/code.json", "--input", '{"text": "b a b"}')
    assert code.returncode == 0, code.stderr
    assert json.loads(code.stdout) == [{"text": "b a b", "words": 3, "most_common": "b"}]
    # the time zone database is inside too (slim images have no /usr/share/zoneinfo)
    zoned = tmp_path / "zoned.json"
    zoned.write_text(json.dumps(ZONED_WORKFLOW), encoding="utf-8")
    berlin = run(
        binary,
        "run",
        str(zoned),
        "--input",
        '{"when": "2026-07-01T12:00:00Z"}',
        env=clean_env(PYTHONTZPATH=str(tmp_path / "no-zoneinfo")),
    )
    assert berlin.returncode == 0, berlin.stderr
    assert json.loads(berlin.stdout) == [{"when": "2026-07-01 14:00 CEST"}]
    invalid = run(binary, "run", "examples/nope.json")
    assert invalid.returncode == 2 and "nope.json" in invalid.stderr
    listed = run(binary, "nodes", "list", "--json")
    venv = subprocess.run(
        [VENV_FLOWLITE, "nodes", "list", "--json"], capture_output=True, text=True, check=True
    )
    assert [n["type"] for n in json.loads(listed.stdout)] == [
        n["type"] for n in json.loads(venv.stdout)
    ]


def test_serve_api_code_webhook_backup_restore(
    binary: Path, tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "data"
    server = Server([str(binary)], data, PATH=clean_env()["PATH"])
    servers.append(server)
    client = server.client
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/api/v1/version").json()["version"] == __version__

    # the editor's templates and static files are in the binary
    page = client.get("/workflows")
    assert page.status_code == 200 and "/static/vendor/htmx.min.js" in page.text
    assert client.get("/static/vendor/htmx.min.js").status_code == 200

    # a workflow with a code node, through the API
    workflow_id = server.workflow(CODE_WORKFLOW)
    execution = server.run(workflow_id, items=[{"a": 1}, {"a": 2}])
    assert execution["status"] == "success", execution
    runs = execution["nodes"]["Tag"]["runs"]
    assert runs[0]["outputs"]["main"] == [{"json": {"n": 2, "pi": 3.1416, "tag": 4}}]
    workers = sandbox_workers(binary)
    assert workers, "no sandbox worker runs from the binary"

    # a webhook, answered by the last node (a code node)
    hook = server.workflow(WEBHOOK_WORKFLOW)
    activated = client.patch(f"/api/v1/workflows/{hook}", json={"active": True})
    assert activated.status_code == 200, activated.text
    answer = client.post("/webhook/smoke", json={"n": 21})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"doubled": 42}
    assert client.post("/webhook/nowhere", json={}).status_code == 404

    # a backup with the binary while the server runs, restored into another directory
    backup = tmp_path / "backup.db"
    done = run(binary, "backup", str(backup), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert "2 workflows" in done.stdout and "key of fingerprint" in done.stderr
    executions = len(server.execution_ids())
    assert server.stop(), "the server did not shut down cleanly"
    assert not workers & sandbox_workers(binary), "sandbox workers outlived the server"

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy2(data / "encryption.key", restored / "encryption.key")
    done = run(binary, "restore", str(backup), "--data-dir", str(restored))
    assert done.returncode == 0, done.stderr
    again = Server([str(binary)], restored)
    servers.append(again)
    assert again.workflow_count() == 2
    assert len(again.execution_ids()) == executions
    assert again.stop()


def test_an_older_data_directory_is_migrated_after_a_copy_and_a_newer_one_refused(
    binary: Path, tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        [
            str(Path(VENV_FLOWLITE).with_name("python")),
            "-c",
            "import asyncio, sys\n"
            "from flowlite.db import open_database\n"
            "from flowlite.migrations import migrate\n"
            "async def main():\n"
            "    db = open_database(f'sqlite+aiosqlite:///{sys.argv[1]}')\n"
            "    await migrate(db, '0001')\n"
            "    await db.close()\n"
            "asyncio.run(main())\n",
            str(data / "flowlite.db"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    server = Server([str(binary)], data)
    servers.append(server)
    assert server.stop()
    copies = list((data / "backups").glob("flowlite-0001-*.db"))
    assert len(copies) == 1
    connection = sqlite3.connect(data / "flowlite.db")
    assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()

    started = time.monotonic()
    refused = subprocess.run(
        [str(binary), "serve", "--data-dir", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert refused.returncode != 0
    assert "newer" in refused.stdout + refused.stderr
    assert time.monotonic() - started < 30
