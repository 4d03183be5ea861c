"""Triggers: schedule state, parked waits and seen webhook signatures.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_state",
        sa.Column("workflow_id", sa.String(32), primary_key=True),
        sa.Column("node", sa.String(255), primary_key=True),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("last_slot", sa.String(24), nullable=False),
    )
    op.create_table(
        "execution_waits",
        sa.Column("execution_id", sa.String(32), primary_key=True),
        sa.Column("resume_at", sa.String(24), nullable=True),
    )
    op.create_index("ix_execution_waits_resume_at", "execution_waits", ["resume_at"])
    op.create_table(
        "webhook_signatures",
        sa.Column("signature", sa.String(160), primary_key=True),
        sa.Column("expires_at", sa.String(24), nullable=False),
    )
    op.create_index("ix_webhook_signatures_expires_at", "webhook_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_table("webhook_signatures")
    op.drop_table("execution_waits")
    op.drop_table("schedule_state")
