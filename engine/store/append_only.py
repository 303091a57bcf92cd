"""Tables the database itself keeps append-only (21 CFR 11.10(e)): UPDATE and DELETE raise, whoever runs them.

Used by the migrations that create such a table (the engine's and a pack's): one definition of the triggers,
so that every append-only table refuses in the same words.
"""

from __future__ import annotations

from alembic import op


def make_append_only(table: str) -> None:
    """Triggers that refuse UPDATE and DELETE on ``table``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only: % refused', TG_OP; END $$ LANGUAGE plpgsql""")
        op.execute(f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END")


def drop_append_only(table: str) -> None:
    """Before ``table`` is dropped: PostgreSQL's trigger function outlives the table (SQLite's triggers go
    with it)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
