"""`flowlite import`, `export`, `doctor` and `serve` start-up errors, as real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

FLOWLITE = str(Path(sys.executable).with_name("flowlite"))

YAML_DOC = """\
name: Orders
description: explicit defaults and key order survive
nodes:
  - name: Start
    type: manual_trigger
  - name: Tag
    type: set
    disabled: false
    parameters: {fields: {priority: high}}
connections:
  - {from: Start, to: Tag}
settings: {timezone: Europe/Berlin}
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLITE_")}
    environment.update(env or {})
    return subprocess.run(
        [FLOWLITE, *args], capture_output=True, text=True, timeout=60, env=environment
    )


def test_import_export_round_trip(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    source = tmp_path / "orders.yaml"
    source.write_text(YAML_DOC)
    result = cli("import", str(source), "--data-dir", data)
    assert result.returncode == 0, result.stderr
    outcome, workflow_id, version, *_ = result.stdout.split()
    assert (outcome, version) == ("created", "v1")

    out = tmp_path / "out"
    result = cli("export", "--all", "--out", str(out), "--data-dir", data)
    assert result.returncode == 0, result.stderr
    exported = out / f"{workflow_id}.json"
    assert json.loads(exported.read_text()) == yaml.safe_load(YAML_DOC)
    assert list(json.loads(exported.read_text())) == list(yaml.safe_load(YAML_DOC))  # key order

    yaml_out = cli("export", "--id", workflow_id, "--format", "yaml", "--data-dir", data)
    assert yaml.safe_load(yaml_out.stdout) == yaml.safe_load(YAML_DOC)

    # exporting what was imported, and importing the export, changes nothing
    again = cli("import", str(out), "--data-dir", data)
    assert again.stdout.startswith(f"unchanged {workflow_id} v1")
    fresh = str(tmp_path / "fresh")
    assert cli("import", str(out), "--data-dir", fresh).stdout.startswith(f"created {workflow_id}")
    second = tmp_path / "second"
    cli("export", "--all", "--out", str(second), "--data-dir", fresh)
    assert (second / exported.name).read_bytes() == exported.read_bytes()

    changed = json.loads(exported.read_text())
    changed["nodes"][1]["parameters"]["fields"]["priority"] = "low"
    exported.write_text(json.dumps(changed))
    assert cli("import", str(exported), "--data-dir", data).stdout.startswith(
        f"updated {workflow_id} v2"
    )


def test_import_and_export_errors(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.json").write_text(json.dumps({"name": "x", "nodes": [{"name": "a", "type": "nope"}]}))
    (bad / "b.json").write_text(json.dumps({"name": "y", "nodes": [], "extra": 1}))
    result = cli("import", str(bad), "--data-dir", data)
    assert result.returncode == 2
    assert "unknown node type 'nope'" in result.stderr and "extra: unknown field" in result.stderr
    assert "2 of 2 file(s) are invalid" in result.stderr
    assert cli("import", str(tmp_path / "missing.json"), "--data-dir", data).returncode == 2
    assert cli("export", "--data-dir", data).returncode == 2
    assert cli("export", "--all", "--data-dir", data).returncode == 2  # needs --out
    missing = cli("export", "--id", "nope", "--data-dir", data)
    assert missing.returncode == 2 and "no workflow with id 'nope'" in missing.stderr
    connection = sqlite3.connect(tmp_path / "data" / "flowlite.db")
    assert connection.execute("SELECT count(*) FROM workflows").fetchone() == (0,)
    connection.close()


def test_doctor_prints_configuration_with_secrets_masked(tmp_path: Path) -> None:
    result = cli(
        "doctor", "--data-dir", str(tmp_path / "data"), env={"FLOWLITE_TIMEZONE": "Europe/Paris"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "timezone = Europe/Paris" in result.stdout
    assert "ok   database: sqlite" in result.stdout
    masked = cli(
        "doctor",
        "--json",
        "--database-url",
        "postgresql+asyncpg://bob:hunter2@127.0.0.1:1/none",
    )
    report = json.loads(masked.stdout)
    assert masked.returncode == 1 and not report["ok"]
    assert "hunter2" not in masked.stdout
    assert report["settings"]["database_url"] == "postgresql+asyncpg://bob:***@127.0.0.1:1/none"
    assert any(c["status"] == "FAIL" and c["name"] == "database" for c in report["checks"])


def test_serve_refuses_bad_settings_and_newer_schemas(tmp_path: Path) -> None:
    result = cli("serve", "--data-dir", str(tmp_path), env={"FLOWLITE_PORT": "nope"})
    assert result.returncode == 2 and "FLOWLITE_PORT: expected an integer" in result.stderr
    data = tmp_path / "data"
    assert cli("import", "--data-dir", str(data), str(tmp_path / "none")).returncode == 2
    cli("doctor", "--data-dir", str(data))
    connection = sqlite3.connect(data / "flowlite.db")
    connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    connection.execute("INSERT INTO alembic_version VALUES ('9999')")
    connection.commit()
    connection.close()
    result = cli("serve", "--data-dir", str(data), "--port", "0")
    assert result.returncode == 1
    assert "newer than this flowlite knows" in result.stdout + result.stderr
