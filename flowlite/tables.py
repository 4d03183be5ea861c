"""The database tables (SQLAlchemy Core). The migrations in :mod:`flowlite.migrations` create them.

Timestamps are ISO 8601 UTC text with milliseconds (``2026-11-21T10:00:00.000Z``): they sort as
text on SQLite and Postgres alike and read the same as the execution record. Execution ids are
time-sortable (see :func:`flowlite.store.new_id`), so ``ORDER BY id`` is creation order and
cursor pagination works on the primary key.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "audit_log",
    "credentials",
    "execution_data",
    "execution_waits",
    "executions",
    "meta",
    "metadata",
    "schedule_state",
    "webhook_signatures",
    "workflow_versions",
    "workflows",
]

metadata = MetaData()

ID = String(32)
TIME = String(24)

workflows = Table(
    "workflows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    #: the number of the current version
    Column("version", Integer, nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("updated_at", TIME, nullable=False),
    Index("ix_workflows_name", "name"),
    Index("ix_workflows_updated_at", "updated_at"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", ID, ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    #: the document exactly as saved (JSON text)
    Column("document", Text, nullable=False),
    Column("created_at", TIME, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("workflow_id", ID, nullable=True),
    Column("workflow_name", Text, nullable=False),
    Column("workflow_version", Integer, nullable=True),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", TIME, nullable=False),
    Column("finished_at", TIME, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("error_node", Text, nullable=True),
    #: the execution this one retries
    Column("retry_of", ID, nullable=True),
    Index("ix_executions_workflow", "workflow_id", "id"),
    Index("ix_executions_status", "status", "id"),
    Index("ix_executions_started_at", "started_at"),
)

execution_data = Table(
    "execution_data",
    metadata,
    Column("execution_id", ID, ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    #: the execution record as zlib-compressed JSON (spilled outputs replaced by references)
    Column("record", LargeBinary, nullable=True),
    #: what the run started with (trigger items and start node), zlib-compressed JSON, for retries
    Column("inputs", LargeBinary, nullable=True),
    #: whether some outputs live in files under the data directory
    Column("spilled", Boolean, nullable=False, default=False),
)

#: per schedule trigger of an active workflow: the last slot handled (fired or skipped). It is
#: moved forward in the transaction that stores the slot's execution, so a restart neither fires
#: a slot twice nor forgets one (see flowlite.schedules)
schedule_state = Table(
    "schedule_state",
    metadata,
    Column("workflow_id", ID, primary_key=True),
    Column("node", String(255), primary_key=True),
    #: the trigger's definition (cron or interval and timezone): a change restarts from now
    Column("trigger", Text, nullable=False),
    Column("last_slot", TIME, nullable=False),
)

#: executions parked by a long `wait` (status `waiting`), with the time to resume them
execution_waits = Table(
    "execution_waits",
    metadata,
    Column("execution_id", ID, primary_key=True),
    #: null: resumed by its webhook only
    Column("resume_at", TIME, nullable=True),
    Index("ix_execution_waits_resume_at", "resume_at"),
)

#: HMAC signatures of webhook requests already accepted, kept while their timestamp is in the
#: window, so that a replayed request is refused (also after a restart)
webhook_signatures = Table(
    "webhook_signatures",
    metadata,
    Column("signature", String(160), primary_key=True),
    Column("expires_at", TIME, nullable=False),
    Index("ix_webhook_signatures_expires_at", "expires_at"),
)

#: facts about the installation itself, by key (the encryption key's fingerprint)
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: stored credentials: the data (every field, as JSON) is an AES-256-GCM envelope (flowlite.crypto)
credentials = Table(
    "credentials",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("updated_at", TIME, nullable=False),
)

#: the append-only audit log; each entry's hash covers the previous one's (flowlite.audit)
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", TIME, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    #: JSON object, never secrets
    Column("details", Text, nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_at", "at"),
)
