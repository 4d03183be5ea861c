"""The configuration: precedence, validation, masking, and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowlite.config import SETTINGS, Config, ConfigError, load_config, mask_url, settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults() -> None:
    config = load_config({}, environ={})
    assert config == Config()
    assert config.url == "sqlite+aiosqlite:///data/flowlite.db"
    assert config.public_url == "http://127.0.0.1:5678"


def test_cli_flags_beat_environment_beat_defaults(tmp_path: Path) -> None:
    env = {"FLOWLITE_PORT": "7000", "FLOWLITE_HOST": "0.0.0.0", "FLOWLITE_DATA_DIR": str(tmp_path)}
    config = load_config({"port": 7100, "host": None}, environ=env)
    assert config.port == 7100  # flag
    assert config.host == "0.0.0.0"  # environment (a None flag is "not given")
    assert config.data_dir == tmp_path
    assert config.timezone == "UTC"  # default


def test_sizes_and_numbers_from_environment() -> None:
    config = load_config(
        {},
        environ={
            "FLOWLITE_SPILL_THRESHOLD_BYTES": "2MB",
            "FLOWLITE_MAX_BODY_BYTES": "512kb",
            "FLOWLITE_SHUTDOWN_TIMEOUT": "2.5",
            "FLOWLITE_RETENTION_DAYS": "0",
        },
    )
    assert config.spill_threshold_bytes == 2 * 1024 * 1024
    assert config.max_body_bytes == 512 * 1024
    assert config.shutdown_timeout == 2.5
    assert config.retention_days == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOWLITE_PORT": "http"}, "FLOWLITE_PORT: expected an integer, got 'http'"),
        ({"FLOWLITE_PORT": "70000"}, "port: 70000 is not a TCP port"),
        ({"FLOWLITE_TIMEZONE": "Mars/Olympus"}, "'Mars/Olympus' is not an IANA timezone"),
        ({"FLOWLITE_DATABASE_URL": "mysql://x@y/z"}, "only sqlite+aiosqlite:// and postgresql"),
        ({"FLOWLITE_MAX_BODY_BYTES": "lots"}, "expected a size in bytes"),
        ({"FLOWLITE_SANDBOX_SIZE": "0"}, "sandbox_size: must be at least 1"),
        ({"FLOWLITE_LOG_LEVEL": "loud"}, "log_level"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({}, environ=env)
    assert message in caught.value.message


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config({"colour": "red"}, environ={})


def test_database_urls_are_normalized_and_masked() -> None:
    config = load_config({"database_url": "postgres://bob:s3cret@db:5432/flow"}, environ={})
    assert config.database_url == "postgresql+asyncpg://bob:s3cret@db:5432/flow"
    described = config.describe()
    assert described["database_url"] == "postgresql+asyncpg://bob:***@db:5432/flow"
    assert "s3cret" not in str(described)
    assert mask_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"


def test_every_setting_is_a_config_field_with_the_same_default() -> None:
    config = Config()
    for setting in SETTINGS:
        default = Path(setting.default) if setting.kind == "path" else setting.default
        assert getattr(config, setting.name) == default, setting.name
    assert len(SETTINGS) == len(Config.__dataclass_fields__)


def test_readme_settings_table_is_generated_from_the_settings() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert match, "README.md lacks the <!-- settings:start --> ... <!-- settings:end --> table"
    assert match.group(1).strip() == settings_markdown().strip(), (
        "README settings table is stale: paste flowlite.config.settings_markdown() between the markers"
    )
    for setting in SETTINGS:
        assert setting.env in match.group(1)
