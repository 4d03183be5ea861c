"""Execution retention: delete executions older than ``retention_days`` or beyond the newest
``retention_max_count``, in bounded batches with a pause between them so that the server keeps
serving, then give the freed space back to the file system (SQLite incremental vacuum)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from flowlite.config import Config
from flowlite.db import Database
from flowlite.execution_store import prune_batch
from flowlite.spill import remove_execution_files

__all__ = ["prune", "retention_loop"]

log = logging.getLogger(__name__)


def _cutoff(days: int) -> str | None:
    if days <= 0:
        return None
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


async def prune(config: Config, db: Database, *, batch: int = 500, pause: float = 0.02) -> int:
    """One pruning pass; returns how many executions were deleted."""
    older_than = _cutoff(config.retention_days)
    keep = config.retention_max_count
    if older_than is None and keep <= 0:
        return 0
    total = 0
    while True:
        ids = await prune_batch(db, older_than=older_than, keep=keep, batch=batch)
        for execution_id in ids:
            directory = config.executions_dir / execution_id
            if directory.exists():
                remove_execution_files(directory)
        total += len(ids)
        if len(ids) < batch:
            break
        await asyncio.sleep(pause)
    if total:
        freed = await db.reclaim_space()
        log.info("retention: deleted %d execution(s), freed %d page(s)", total, freed)
    return total


async def retention_loop(config: Config, db: Database) -> None:
    """Prune now and then every ``retention_interval`` seconds, until cancelled."""
    while True:
        try:
            await prune(config, db)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention: pruning failed; trying again later")
        await asyncio.sleep(config.retention_interval)
