"""Alembic environment: the connection is handed over by ``engine.store.migrate``."""

from alembic import context

from engine.packs import schema

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=schema(), render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
