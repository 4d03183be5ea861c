"""The sandbox settings reach the server's pool; a required isolation level that is missing
refuses the start instead of failing at the first `code` node."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from flowlite.app import start_server, stop_server
from flowlite.config import Config, ConfigError, load_config
from flowlite.sandbox import SandboxUnavailable


async def test_required_namespaces_without_bubblewrap_refuse_to_start(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no bwrap to be found
    strict = dataclasses.replace(config, sandbox_isolation="namespaces")
    with pytest.raises(SandboxUnavailable):
        await start_server(strict)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
async def test_required_namespaces_start_the_pool_with_the_server(config: Config) -> None:
    strict = dataclasses.replace(config, sandbox_isolation="namespaces", sandbox_size=1)
    state = await start_server(strict)
    try:
        items, _ = await state.runner.engine.code_runner(
            "return [{'n': 1}]", "all_items", [{"json": {}}], timeout=None, allow_network=False
        )
        assert items == [{"json": {"n": 1}}]
    finally:
        await stop_server(state)


def test_sandbox_settings_are_read_and_checked() -> None:
    config = load_config(
        environ={"FLOWLITE_SANDBOX_MODULES": "csv, textwrap", "FLOWLITE_SANDBOX_MEMORY_MB": "256"}
    )
    assert config.sandbox_options()["extra_modules"] == ("csv", "textwrap")
    assert config.sandbox_options()["memory_mb"] == 256
    with pytest.raises(ConfigError, match="sandbox_isolation"):
        load_config(environ={"FLOWLITE_SANDBOX_ISOLATION": "chroot"})
