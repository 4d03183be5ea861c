"""Executions: a summary row each, and their compressed data in a table apart.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workflow_id", sa.String(32), nullable=True),
        sa.Column("workflow_name", sa.Text, nullable=False),
        sa.Column("workflow_version", sa.Integer, nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(24), nullable=False),
        sa.Column("finished_at", sa.String(24), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("error_node", sa.Text, nullable=True),
        sa.Column("retry_of", sa.String(32), nullable=True),
    )
    op.create_index("ix_executions_workflow", "executions", ["workflow_id", "id"])
    op.create_index("ix_executions_status", "executions", ["status", "id"])
    op.create_index("ix_executions_started_at", "executions", ["started_at"])
    op.create_table(
        "execution_data",
        sa.Column(
            "execution_id",
            sa.String(32),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("record", sa.LargeBinary, nullable=True),
        sa.Column("inputs", sa.LargeBinary, nullable=True),
        sa.Column("spilled", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("execution_data")
    op.drop_table("executions")
