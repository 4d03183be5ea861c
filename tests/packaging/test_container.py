"""Static checks of the container files (Docker cannot run here): the Dockerfile's stages, user,
volume, health check and configuration; the compose file's service; what .dockerignore lets in;
and the agreement between the binary's entry point and the sandbox's frozen worker command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlite.config import SETTINGS
from flowlite.sandbox.isolation import FROZEN_WORKER_ARG
from tests.packaging.conftest import ROOT

PACKAGING = ROOT / "packaging"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages(pairs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in pairs:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def test_dockerfile_is_multi_stage_non_root_with_a_data_volume_and_a_health_check() -> None:
    pairs = instructions(PACKAGING / "Dockerfile")
    build, runtime = stages(pairs)
    assert build[0][1].endswith("AS build") and "python:3.11" in build[0][1]
    assert runtime[0][1].endswith("AS runtime")
    assert "python" not in runtime[0][1]  # the runtime image holds the binary, not Python
    runtime_keys = dict(runtime)
    assert runtime_keys["COPY"].startswith("--from=build /out/flowlite ")
    assert any("packaging/flowlite.spec" in rest for key, rest in build if key == "RUN")

    user = runtime_keys["USER"].split(":")[0]
    assert user not in ("root", "0")
    assert "useradd --system --uid 10001 --gid flowlite" in runtime_keys["RUN"]
    assert "chown flowlite:flowlite /data" in runtime_keys["RUN"]
    assert runtime_keys["VOLUME"] == '["/data"]'
    assert runtime_keys["EXPOSE"] == "5678"
    assert "/healthz" in runtime_keys["HEALTHCHECK"]
    assert "FLOWLITE_PORT" in runtime_keys["HEALTHCHECK"]

    env = dict(re.findall(r"(FLOWLITE_[A-Z_]+)=(\S+)", runtime_keys["ENV"]))
    assert env["FLOWLITE_DATA_DIR"] == "/data" and env["FLOWLITE_HOST"] == "0.0.0.0"
    known = {setting.env for setting in SETTINGS}
    assert set(env) <= known, set(env) - known
    assert runtime_keys["ENTRYPOINT"] == '["/usr/bin/tini", "--", "/usr/local/bin/flowlite"]'
    assert runtime_keys["CMD"] == '["serve"]'


def test_health_check_command_speaks_http(tmp_path: Path) -> None:
    """The health check's bash one-liner against a tiny HTTP server on a free port."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = dict(stages(instructions(PACKAGING / "Dockerfile"))[1])
        command = yaml.safe_load(runtime["HEALTHCHECK"].split(" CMD ", 1)[1])
        port = str(server.server_address[1])
        ok = subprocess.run(command, env={"FLOWLITE_PORT": port}, timeout=10, check=False)
        assert ok.returncode == 0
        closed = subprocess.run(
            command, env={"FLOWLITE_PORT": "1"}, timeout=10, capture_output=True, check=False
        )
        assert closed.returncode != 0
    finally:
        server.shutdown()


def test_compose_file_runs_the_image_with_a_volume_and_flowlite_settings() -> None:
    compose: dict[str, Any] = yaml.safe_load(
        (PACKAGING / "docker-compose.yml").read_text(encoding="utf-8")
    )
    service = compose["services"]["flowlite"]
    assert service["build"] == {"context": "..", "dockerfile": "packaging/Dockerfile"}
    assert (PACKAGING / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["volumes"] == ["flowlite-data:/data"]
    assert "flowlite-data" in compose["volumes"]
    assert service["ports"] == ["5678:5678"]
    known = {setting.env for setting in SETTINGS}
    assert set(service["environment"]) <= known
    assert service["environment"]["FLOWLITE_DATA_DIR"] == "/data"
    test = service["healthcheck"]["test"]
    assert test[:2] == ["CMD", "bash"] and "/healthz" in test[-1]
    assert "$${FLOWLITE_PORT" in test[-1]  # escaped for compose, expanded by bash


def test_compose_config_when_docker_compose_is_available() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin")
    done = subprocess.run(
        [docker, "compose", "-f", str(PACKAGING / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    included = {p[1:] for p in patterns if p.startswith("!")}
    build = stages(instructions(PACKAGING / "Dockerfile"))[0]
    for keyword, rest in build:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert source.rstrip("/") in included, source
                assert (ROOT / source).exists(), source


def test_the_binary_entry_point_runs_the_frozen_sandbox_worker() -> None:
    entry = (PACKAGING / "flowlite_entry.py").read_text(encoding="utf-8")
    assert f'SANDBOX_WORKER_ARG = "{FROZEN_WORKER_ARG}"' in entry
    spec = (PACKAGING / "flowlite.spec").read_text(encoding="utf-8")
    for needed in ("aiosqlite", "asyncpg", '"migrations"', '"sandbox", "worker.py"'):
        assert needed in spec, needed
