"""Alembic environment: runs the revisions on the connection the runner hands over
(:func:`highlights.persist.migrations.upgrade_to_head`), in batch mode so SQLite can alter tables."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations through highlights.persist.migrations.upgrade_to_head(engine)")

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
