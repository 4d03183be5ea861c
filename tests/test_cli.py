"""The `flowlite` console script, run as a real subprocess: stdout/stderr rules and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import flowlite

FLOWLITE = str(Path(sys.executable).with_name("flowlite"))


def flowlite_cli(
    *args: str, input_text: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
    return subprocess.run(
        [FLOWLITE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        env=env,
    )


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else doc)
    return str(path)


HELLO = {
    "name": "hello",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {
            "name": "Greet",
            "type": "set",
            "parameters": {"fields": {"greeting": "Hello, {{ json.name or 'world' }}!"}},
        },
    ],
    "connections": [{"from": "Start", "to": "Greet"}],
}


def test_version() -> None:
    result = flowlite_cli("--version")
    assert result.returncode == 0 and flowlite.__version__ in result.stdout


def test_run_prints_the_last_items_as_json(tmp_path: Path) -> None:
    result = flowlite_cli("run", write(tmp_path, "hello.json", HELLO), "--input", '{"name": "Ada"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"name": "Ada", "greeting": "Hello, Ada!"}]


def test_run_input_from_a_file_and_a_list(tmp_path: Path) -> None:
    data = tmp_path / "input.json"
    data.write_text(json.dumps([{"name": "A"}, {"json": {"name": "B"}}]))
    result = flowlite_cli("run", write(tmp_path, "hello.json", HELLO), "--input", f"@{data}")
    assert [it["greeting"] for it in json.loads(result.stdout)] == ["Hello, A!", "Hello, B!"]


def test_run_output_full_and_none(tmp_path: Path) -> None:
    file = write(tmp_path, "hello.json", HELLO)
    full = json.loads(flowlite_cli("run", file, "--output", "full").stdout)
    assert full["status"] == "success" and full["mode"] == "cli"
    assert full["nodes"]["Greet"]["runs"][0]["outputs"]["main"] == [
        {"json": {"greeting": "Hello, world!"}}
    ]
    none = flowlite_cli("run", file, "--output", "none")
    assert none.returncode == 0 and none.stdout == ""


def test_run_yaml_file(tmp_path: Path) -> None:
    yaml_doc = """
name: hello yaml
nodes:
  - {name: Start, type: manual_trigger}
  - name: Greet
    type: set
    parameters: {fields: {n: "{{ json.n * 2 }}"}}
connections:
  - {from: Start, to: Greet}
"""
    result = flowlite_cli("run", write(tmp_path, "hello.yaml", yaml_doc), "--input", '{"n": 21}')
    assert json.loads(result.stdout) == [{"n": 42}]


def test_failed_execution_exits_1_with_the_node_on_stderr(tmp_path: Path) -> None:
    doc = {
        "name": "fails",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {
                "name": "Boom",
                "type": "stop_and_error",
                "parameters": {"message": "total was {{ json.total }}"},
            },
        ],
        "connections": [{"from": "Start", "to": "Boom"}],
    }
    file = write(tmp_path, "fails.json", doc)
    result = flowlite_cli("run", file, "--input", '{"total": 3}')
    assert result.returncode == 1 and result.stdout == ""
    assert "node 'Boom'" in result.stderr and "total was 3" in result.stderr
    full = flowlite_cli("run", file, "--output", "full")
    assert full.returncode == 1 and json.loads(full.stdout)["status"] == "error"


def test_invalid_workflow_exits_2_listing_every_problem(tmp_path: Path) -> None:
    doc = {
        "name": "bad",
        "nodes": [{"name": "A", "type": "nope"}, {"name": "A", "type": "set"}],
        "connections": [{"from": "A", "to": "Ghost"}],
    }
    result = flowlite_cli("run", write(tmp_path, "bad.json", doc))
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown node type 'nope'" in result.stderr
    assert "duplicate node name" in result.stderr and "'Ghost'" in result.stderr


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    file = write(tmp_path, "hello.json", HELLO)
    assert flowlite_cli("run", file, "--input", "{not json").returncode == 2
    assert flowlite_cli("run", file, "--input", "3").returncode == 2
    assert flowlite_cli("run", file, "--output", "everything").returncode == 2
    assert flowlite_cli("run", str(tmp_path / "missing.json")).returncode == 2
    assert flowlite_cli("run", file, "--start", "Nowhere").returncode == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = flowlite_cli("run", str(broken))
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_ctrl_c_cancels_and_exits_130(tmp_path: Path) -> None:
    doc = {
        "name": "slow",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {"name": "Wait", "type": "wait", "parameters": {"seconds": 30}},
        ],
        "connections": [{"from": "Start", "to": "Wait"}],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
    process = subprocess.Popen(
        [FLOWLITE, "run", write(tmp_path, "slow.json", doc), "--output", "full"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.5)  # let it start and reach the wait
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    record = json.loads(stdout)
    assert (
        record["status"] == "canceled"
        and record["nodes"]["Wait"]["runs"][0]["status"] == "canceled"
    )


def test_validate_reports_each_file(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", HELLO)
    bad = write(tmp_path, "bad.json", {"name": "", "nodes": []})
    result = flowlite_cli("validate", good, bad)
    assert result.returncode == 2
    assert f"{good}: ok" in result.stdout
    assert "name: must not be empty" in result.stderr and "at least one node" in result.stderr
    assert flowlite_cli("validate", good).returncode == 0


def test_nodes_list_and_describe() -> None:
    listed = flowlite_cli("nodes", "list", "--json")
    types = {t["type"] for t in json.loads(listed.stdout)}
    assert {"manual_trigger", "webhook", "set", "if", "merge", "http_request", "code"} <= types
    described = json.loads(flowlite_cli("nodes", "describe", "set").stdout)
    assert described["type"] == "set" and any(
        p["name"] == "fields" for p in described["parameters"]
    )
    missing = flowlite_cli("nodes", "describe", "nope")
    assert missing.returncode == 2 and "unknown node type" in missing.stderr


def test_run_does_not_import_the_web_or_database_stack(tmp_path: Path) -> None:
    probe = (
        "import sys, runpy; sys.argv = ['flowlite', 'run', sys.argv[1], '--output', 'none'];\n"
        "try:\n    runpy.run_module('flowlite', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('litestar', 'sqlalchemy', 'alembic', 'uvicorn', 'jinja2', 'asyncpg', 'redis')"
        " if m in sys.modules)\nprint(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, write(tmp_path, "hello.json", HELLO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag: str) -> None:
    result = flowlite_cli(flag)
    assert result.returncode == 0 and "run" in result.stdout and "validate" in result.stdout
