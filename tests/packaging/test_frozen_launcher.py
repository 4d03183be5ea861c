"""How the sandbox starts its workers from a frozen binary, checked without building one (the
binary tests run the real thing): the hidden worker argument, the PyInstaller variables that let
a worker reuse the unpacked directory, and read-only binds that survive the /tmp tmpfs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from flowlite.sandbox.isolation import FROZEN_WORKER_ARG, Launcher

UNPACKED = "/tmp/_MEI123456"  # where a one-file binary unpacks itself


def launcher(level: str = "namespaces") -> Launcher:
    return Launcher(
        level=level,
        bwrap="/usr/bin/bwrap",
        python="/opt/flowlite/flowlite",
        paths=(f"{UNPACKED}/flowlite/sandbox", UNPACKED),
        root=True,
        tmp_bytes=64 * 1024 * 1024,
    )


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("_PYI_ARCHIVE_FILE", "/opt/flowlite/flowlite")
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", UNPACKED)
    monkeypatch.setenv("_PYI_PARENT_PROCESS_LEVEL", "1")
    monkeypatch.setenv("FLOWLITE_ENCRYPTION_KEY", "not for workers")


def test_unfrozen_workers_run_python_with_the_bootstrap() -> None:
    command = launcher("process").command(network=False)
    assert command[:6] == ["/opt/flowlite/flowlite", "-I", "-S", "-B", "-c", command[5]]
    assert FROZEN_WORKER_ARG not in command
    assert not any(k.startswith("_PYI") for k in launcher().env("/tmp"))


@pytest.mark.usefixtures("frozen")
def test_frozen_workers_run_the_binary_with_the_hidden_argument() -> None:
    command = launcher("process").command(network=False)
    assert command == [
        "/opt/flowlite/flowlite",
        FROZEN_WORKER_ARG,
        f"{UNPACKED}/flowlite/sandbox",
        UNPACKED,
    ]
    wrapped = launcher("namespaces").command(network=False)
    assert wrapped[0] == "/usr/bin/bwrap"
    assert wrapped[wrapped.index("--") + 1 :] == command


@pytest.mark.usefixtures("frozen")
def test_frozen_workers_reuse_the_unpacked_directory_and_get_no_secrets() -> None:
    env = launcher().env("/tmp")
    assert env["_PYI_APPLICATION_HOME_DIR"] == UNPACKED
    assert env["_PYI_ARCHIVE_FILE"] == "/opt/flowlite/flowlite"
    assert env["_PYI_PARENT_PROCESS_LEVEL"] == "1"
    assert not any(k.startswith("FLOWLITE_") for k in env)


@pytest.mark.usefixtures("frozen")
def test_binds_under_tmp_come_after_the_tmpfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpacked = str(tmp_path)  # under /tmp, like a one-file binary's directory
    assert unpacked.startswith("/tmp/")
    monkeypatch.setattr(sys, "prefix", unpacked)
    monkeypatch.setattr(sys, "exec_prefix", unpacked)
    options = dataclasses.replace(launcher(), paths=(unpacked,)).command(network=False)
    tmpfs = options.index("--tmpfs")
    assert options[tmpfs + 1] == "/tmp"
    binds = {options[i + 2]: i for i, o in enumerate(options) if o == "--ro-bind"}
    assert unpacked in binds
    for path, index in binds.items():
        if path.startswith("/tmp/"):
            assert index > tmpfs, f"{path} would be hidden by the tmpfs"
