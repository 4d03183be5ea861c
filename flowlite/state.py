"""What the API handlers share, built by :func:`flowlite.app.create_app`'s lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from flowlite.config import Config
from flowlite.db import Database
from flowlite.events import EventHub
from flowlite.registry import Registry
from flowlite.runner import Runner

__all__ = ["ServerState"]


@dataclass
class ServerState:
    config: Config
    db: Database
    registry: Registry
    hub: EventHub
    runner: Runner
    #: tasks stopped at shut-down (retention)
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    #: the sandbox pool's code runner, closed at shut-down
    sandbox: Any = None
    #: webhooks, schedules, waits and the execution queue (a flowlite.activation.Triggers;
    #: typed Any because handler signatures resolve these annotations at run time)
    triggers: Any = None
    #: the credential store (a flowlite.credentials.StoredCredentials: the engine's source)
    credentials: Any = None
