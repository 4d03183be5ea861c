"""The server's configuration: one frozen :class:`Config` from CLI flags, ``FLOWLITE_*`` variables
and defaults, in that order of precedence.

Every setting is declared once in :data:`SETTINGS`; the README's settings table is generated from
it (:func:`settings_markdown`) and a test checks that the two agree. Nothing reads settings at
import time: :func:`load_config` is called by the CLI and the result passed to ``create_app``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlite.errors import UserError

__all__ = [
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "load_config",
    "mask_url",
    "settings_markdown",
]


class ConfigError(UserError):
    """A setting has a value flowlite cannot use; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    """One setting: its field in :class:`Config`, where it can come from, and what it means."""

    name: str
    kind: str  # "str", "int", "float", "bytes", "path"
    default: Any
    description: str
    flag: str | None = None
    secret: bool = False

    @property
    def env(self) -> str:
        return f"FLOWLITE_{self.name.upper()}"


MiB = 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        "path",
        "data",
        "Directory for the SQLite database and spilled execution data.",
        "--data-dir",
    ),
    Setting(
        "database_url",
        "str",
        "",
        "SQLAlchemy URL of the database; empty means SQLite in the data directory. Postgres: `postgresql+asyncpg://user:password@host/db`.",
        "--database-url",
        secret=True,
    ),
    Setting("host", "str", "127.0.0.1", "Address `flowlite serve` listens on.", "--host"),
    Setting("port", "int", 5678, "Port `flowlite serve` listens on.", "--port"),
    Setting(
        "base_url",
        "str",
        "",
        "Public URL of the server (links in error workflows, resume URLs); default `http://HOST:PORT`.",
    ),
    Setting("timezone", "str", "UTC", "Default IANA timezone of workflows that set none."),
    Setting(
        "retention_days",
        "int",
        14,
        "Delete executions older than this many days (0: keep forever).",
    ),
    Setting(
        "retention_max_count",
        "int",
        10000,
        "Keep at most this many executions, deleting the oldest (0: no limit).",
    ),
    Setting("retention_interval", "float", 300.0, "Seconds between two pruning passes."),
    Setting("sandbox_size", "int", 2, "Number of warm sandbox workers running `code` nodes."),
    Setting(
        "sandbox_isolation",
        "str",
        "auto",
        "Isolation of user code: `auto` (the best available), `namespaces` (require bubblewrap; refuse to start without it), `process` (no namespaces).",
    ),
    Setting("sandbox_memory_mb", "int", 512, "Address-space limit of a sandbox worker, in MB."),
    Setting("sandbox_timeout", "float", 60.0, "Longest run of one `code` node job, in seconds."),
    Setting(
        "sandbox_modules",
        "str",
        "",
        "Extra modules `code` nodes may import, comma-separated (beyond the standard allow-list).",
    ),
    Setting(
        "spill_threshold_bytes",
        "bytes",
        8 * MiB,
        "A node output larger than this (as JSON) is written to the data directory instead of the record.",
    ),
    Setting(
        "output_page_items",
        "int",
        100,
        "Items per node output returned in an execution's detail; the rest are paged.",
    ),
    Setting(
        "max_body_bytes", "bytes", 16 * MiB, "Largest request body the API accepts (larger: 413)."
    ),
    Setting(
        "shutdown_timeout",
        "float",
        30.0,
        "Seconds running executions get to finish when the server stops.",
    ),
    Setting("log_level", "str", "info", "Log level: debug, info, warning, error."),
    Setting(
        "wait_threshold_seconds",
        "float",
        65.0,
        "A `wait` longer than this parks its execution in the database (status `waiting`) instead of holding it in memory.",
    ),
    Setting(
        "schedule_grace_seconds",
        "float",
        30.0,
        "A schedule slot handled up to this many seconds late still fires; older slots are missed and follow the trigger's `misfire` policy.",
    ),
    Setting(
        "concurrency_limit",
        "int",
        0,
        "Production executions (webhook, schedule) running at once; more wait in the queue (0: no limit).",
    ),
    Setting(
        "workflow_concurrency_limit",
        "int",
        0,
        "Production executions of one workflow running at once; more wait in the queue (0: no limit).",
    ),
    Setting(
        "webhook_test_seconds",
        "float",
        120.0,
        "How long a test webhook URL (`/webhook-test/...`) listens after the editor asks for it.",
    ),
    Setting(
        "encryption_key",
        "str",
        "",
        "Key of stored credentials: 32 random bytes in base64url (`flowlite credentials generate-key`); empty: the `encryption.key` file in the data directory, created at first start.",
        secret=True,
    ),
)


@dataclass(frozen=True)
class Config:
    """The effective configuration of one server process."""

    data_dir: Path = Path("data")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 5678
    base_url: str = ""
    timezone: str = "UTC"
    retention_days: int = 14
    retention_max_count: int = 10000
    retention_interval: float = 300.0
    sandbox_size: int = 2
    sandbox_isolation: str = "auto"
    sandbox_memory_mb: int = 512
    sandbox_timeout: float = 60.0
    sandbox_modules: str = ""
    spill_threshold_bytes: int = 8 * MiB
    output_page_items: int = 100
    max_body_bytes: int = 16 * MiB
    shutdown_timeout: float = 30.0
    log_level: str = "info"
    wait_threshold_seconds: float = 65.0
    schedule_grace_seconds: float = 30.0
    concurrency_limit: int = 0
    workflow_concurrency_limit: int = 0
    webhook_test_seconds: float = 120.0
    encryption_key: str = dataclasses.field(default="", repr=False)  # a secret: not in logs

    @property
    def url(self) -> str:
        """The database URL actually used (SQLite in the data directory by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'flowlite.db'}"

    @property
    def public_url(self) -> str:
        return self.base_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def sandbox_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`flowlite.sandbox.SandboxConfig` (no import needed here)."""
        modules = tuple(m.strip() for m in self.sandbox_modules.split(",") if m.strip())
        return {
            "size": self.sandbox_size,
            "isolation": self.sandbox_isolation,
            "memory_mb": self.sandbox_memory_mb,
            "timeout": self.sandbox_timeout,
            "extra_modules": modules,
        }

    @property
    def executions_dir(self) -> Path:
        return self.data_dir / "executions"

    def describe(self) -> dict[str, Any]:
        """Every setting with its effective value, secrets masked (for `flowlite doctor`)."""
        out: dict[str, Any] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.secret and isinstance(value, str):
                value = mask_url(value) if "://" in value else ("***" if value else "")
            out[setting.name] = str(value) if isinstance(value, Path) else value
        out["database"] = mask_url(self.url)
        return out


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}


def _parse_bytes(text: str) -> int:
    match = _SIZE.match(text)
    if match is None:
        raise ValueError("expected a size in bytes such as 8388608, 512KB or 16MB")
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _UNITS[unit])


_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bytes": _parse_bytes,
    "path": Path,
}
_WORDS = {"int": "an integer", "float": "a number", "bytes": "a size in bytes", "path": "a path"}


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    if setting.kind == "path" and isinstance(value, Path):
        return value
    if setting.kind in ("int", "bytes") and isinstance(value, int) and not isinstance(value, bool):
        return value
    if setting.kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return _PARSERS[setting.kind](str(value).strip() if setting.kind != "str" else str(value))
    except ValueError:
        word = _WORDS.get(setting.kind, "text")
        raise ConfigError(f"{source}: expected {word}, got {value!r}") from None


def _normalize_url(url: str) -> str:
    for prefix, replacement in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


def _check(config: Config) -> None:
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port: {config.port} is not a TCP port (0-65535)")
    try:
        zoneinfo.ZoneInfo(config.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: {config.timezone!r} is not an IANA timezone name") from None
    url = config.database_url
    if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "database_url: only sqlite+aiosqlite:// and postgresql+asyncpg:// URLs are supported, "
            f"got {mask_url(url)!r}"
        )
    for name in ("retention_days", "retention_max_count", "spill_threshold_bytes"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name}: must not be negative")
    for name in ("sandbox_size", "output_page_items", "max_body_bytes"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if config.retention_interval <= 0 or config.shutdown_timeout < 0:
        raise ConfigError("retention_interval must be positive and shutdown_timeout not negative")
    for name in ("concurrency_limit", "workflow_concurrency_limit"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name}: must not be negative (0: no limit)")
    for name in ("wait_threshold_seconds", "schedule_grace_seconds", "webhook_test_seconds"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name}: must not be negative")
    if config.sandbox_isolation not in ("auto", "namespaces", "process"):
        raise ConfigError(
            f"sandbox_isolation: {config.sandbox_isolation!r} is not auto, namespaces or process"
        )
    if config.sandbox_memory_mb < 64 or config.sandbox_timeout <= 0:
        raise ConfigError("sandbox_memory_mb must be at least 64 and sandbox_timeout positive")
    if config.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level: {config.log_level!r} is not debug, info, warning or error")


def load_config(
    cli_overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration: CLI flags (``None`` values ignored), then ``FLOWLITE_*``, then defaults."""
    env = os.environ if environ is None else environ
    overrides = {k: v for k, v in (cli_overrides or {}).items() if v is not None}
    known = {s.name for s in SETTINGS}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            source = setting.flag or setting.name
            values[setting.name] = _coerce(setting, overrides[setting.name], source)
        elif env.get(setting.env, "") != "":
            values[setting.name] = _coerce(setting, env[setting.env], setting.env)
    if "database_url" in values:
        values["database_url"] = _normalize_url(values["database_url"])
    config = Config(**values)
    _check(config)
    return config


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def settings_markdown() -> str:
    """The README's settings table."""
    lines = [
        "| setting | environment variable | CLI flag | default | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        default = setting.default
        shown = f"`{default}`" if default != "" else "(empty)"
        flag = f"`{setting.flag}`" if setting.flag else ""
        lines.append(
            f"| `{setting.name}` | `{setting.env}` | {flag} | {shown} | {setting.description} |"
        )
    return "\n".join(lines) + "\n"


def _defaults_agree() -> bool:
    """The dataclass defaults and the table's defaults are the same (checked by a test)."""
    fields = {f.name: f.default for f in dataclasses.fields(Config)}
    return all(
        (Path(s.default) if s.kind == "path" else s.default) == fields[s.name] for s in SETTINGS
    )
