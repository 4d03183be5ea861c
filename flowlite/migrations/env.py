"""Alembic environment: migrations run on the connection flowlite passes in, inside its transaction.

Run programmatically by :func:`flowlite.migrations.migrate`; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

from flowlite.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
