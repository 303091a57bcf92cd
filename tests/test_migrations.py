"""The Alembic migrations build exactly the schema that the models declare, on SQLite and PostgreSQL, so a
model changed without its migration (or the reverse) fails here rather than in a user's database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.packs import schema
from engine.store import Database


def test_the_migrated_database_has_the_models_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema())
    assert differences == []
