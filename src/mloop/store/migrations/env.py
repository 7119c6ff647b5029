"""Alembic environment: always run on the connection mloop hands over (see store/migrate.py)."""

from alembic import context

from mloop.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("mloop migrations run through mloop.store.migrate.ensure_schema, not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
