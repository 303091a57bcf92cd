"""The Alembic migrations build exactly the schema that the models declare, on SQLite and PostgreSQL, so a
model changed without its migration (or the reverse) fails here rather than in a user's database.

The engine's revisions are the branch ``engine``; a pack's tables come from its own revisions (hook
``gmpflow_migrations``), run after the engine's: the GMP pack's ``gmp/migrations`` (branch ``gmp``), which
took over the tables the engine's 0011 and 0013 used to make, and a site's pack with a folder of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DatabaseError

from engine.audit import Actor
from engine.packs import PackMigrations, default_packs, hookimpl, pack_manager, pack_migrations, schema
from engine.store import Database
from engine.store.migrate import alembic_config, upgrade

ENGINE_HEAD = "0016"
GMP_TABLES = {"lot", "lot_event", "equipment_log"}
ADMIN_ACTOR = Actor("admin", "Ada Admin")


def fresh(tmp_path: Path, name: str = "fresh.db") -> Database:
    return Database(f"sqlite:///{tmp_path / name}")


def versions(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        return set(connection.scalars(text("SELECT version_num FROM alembic_version")))


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def triggers(db: Database, table: str) -> list[str]:
    with db.engine.connect() as connection:
        return sorted(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
                                              "tbl_name = :t"), {"t": table}))


def differences(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), schema()))


def test_the_migrated_database_has_the_models_schema(database: Database) -> None:
    assert differences(database) == []


def test_a_fresh_database_gets_the_engines_tables_then_the_gmp_packs_from_its_branch(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    upgrade(db)
    assert versions(db) == {ENGINE_HEAD, "gmp_0002"}
    assert GMP_TABLES <= tables(db) and differences(db) == []
    assert triggers(db, "equipment_log") == ["equipment_log_no_delete", "equipment_log_no_update"]
    upgrade(db)  # at the heads: nothing to do
    assert versions(db) == {ENGINE_HEAD, "gmp_0002"}
    db.dispose()


def test_without_the_gmp_pack_the_engine_makes_no_gmp_table(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    upgrade(db, pack_manager(builtins=(), load_entry_points=False))
    assert versions(db) == {ENGINE_HEAD} and not GMP_TABLES & tables(db)
    db.dispose()


def made_by_main(tmp_path: Path, at: str) -> Database:
    """A database as the engine's migrations made it up to ``at`` before the pack had its own: the GMP tables
    of the revisions up to there (0011: the lots, 0013: the logbook; the pack's revisions are their DDL
    unchanged) and ``alembic_version`` holding the engine's revision alone."""
    db = fresh(tmp_path, f"main-{at}.db")
    pack = "gmp_0002" if at >= "0013" else "gmp_0001"
    with db.engine.begin() as connection:
        config = alembic_config(connection, pack_migrations(default_packs()))
        command.upgrade(config, at)
        command.upgrade(config, pack)
        connection.execute(text("DELETE FROM alembic_version WHERE version_num LIKE 'gmp%'"))
        connection.execute(text("INSERT INTO lot (lot_id, material, quantity, available, uom, expiry, "
                                "status, created_at, created_by) VALUES ('L-1', 'MAT-1', 5, 5, 'kg', "
                                "'2031-01-01', 'quarantine', '2030-01-01 00:00:00', 'ada')"))
    assert versions(db) == {at}
    return db


@pytest.mark.parametrize("at", [ENGINE_HEAD, "0011"])
def test_a_database_made_by_the_engines_0011_and_0013_keeps_its_tables_and_records_the_packs_revisions(
        tmp_path: Path, at: str) -> None:
    db = made_by_main(tmp_path, at)
    upgrade(db)
    assert versions(db) == {ENGINE_HEAD, "gmp_0002"} and differences(db) == []
    with db.engine.connect() as connection:
        assert connection.scalar(text("SELECT lot_id FROM lot")) == "L-1"  # nothing made again, nothing lost
    assert triggers(db, "equipment_log") == ["equipment_log_no_delete", "equipment_log_no_update"]
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("INSERT INTO equipment_log (equipment_id, kind, at, actor_id, actor_name) "
                                "VALUES ('EQ-1', 'cleaned', '2030-01-01', 'ada', 'Ada')"))
        connection.execute(text("DELETE FROM equipment_log"))
    db.dispose()


def test_on_either_backend_a_database_at_the_engines_head_with_the_gmp_tables_upgrades_in_place(
        database: Database) -> None:
    with database.engine.begin() as connection:  # as the engine's 0011 and 0013 left it
        connection.execute(text("DELETE FROM alembic_version WHERE version_num LIKE 'gmp%'"))
    assert versions(database) == {ENGINE_HEAD} and GMP_TABLES <= tables(database)
    upgrade(database)
    assert versions(database) == {ENGINE_HEAD, "gmp_0002"} and differences(database) == []


SITE_REVISION = '''"""a site's notes on process instances

Revision ID: site_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = 'site_0001'
down_revision = None
branch_labels = ('site',)
depends_on = None


def upgrade() -> None:
    op.create_table('site_note',
                    sa.Column('id', sa.Integer(), primary_key=True),
                    sa.Column('instance_id', sa.Integer(), sa.ForeignKey('process_instance.id')),
                    sa.Column('note', sa.Text(), nullable=False))


def downgrade() -> None:
    op.drop_table('site_note')
'''


class SitePack:
    """A site's pack with a table of its own, made by its own revision (a folder of its own)."""

    def __init__(self, folder: Path, branch: str = "site") -> None:
        self.migrations = PackMigrations(branch, folder)

    @hookimpl
    def gmpflow_migrations(self) -> PackMigrations:
        return self.migrations


def with_site_pack(tmp_path: Path, branch: str = "site"):  # type: ignore[no-untyped-def]
    folder = tmp_path / "site_migrations"
    folder.mkdir(exist_ok=True)
    (folder / "0001_site_note.py").write_text(SITE_REVISION)
    packs = pack_manager(load_entry_points=False)  # the GMP pack, then the site's
    packs.register(SitePack(folder, branch))
    return packs


def test_a_site_pack_brings_its_own_migration_run_after_the_engines_and_the_gmp_packs(tmp_path: Path) -> None:
    packs = with_site_pack(tmp_path)
    assert [m.branch for m in pack_migrations(packs)] == ["gmp", "site"]
    db = fresh(tmp_path)
    upgrade(db, packs)
    assert versions(db) == {ENGINE_HEAD, "gmp_0002", "site_0001"}
    assert {"site_note", *GMP_TABLES} <= tables(db)
    [reference] = inspect(db.engine).get_foreign_keys("site_note")
    assert reference["referred_table"] == "process_instance"
    upgrade(db, packs)
    assert versions(db) == {ENGINE_HEAD, "gmp_0002", "site_0001"}
    db.dispose()


def test_a_site_pack_added_to_a_running_installation_only_adds_its_own_tables(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    upgrade(db)
    upgrade(db, with_site_pack(tmp_path))
    assert versions(db) == {ENGINE_HEAD, "gmp_0002", "site_0001"} and "site_note" in tables(db)
    db.dispose()


@pytest.mark.parametrize("branch", ["engine", "gmp"])
def test_a_pack_whose_branch_is_taken_is_refused(tmp_path: Path, branch: str) -> None:
    with pytest.raises(ValueError, match="branch of their own"):
        pack_migrations(with_site_pack(tmp_path, branch))


def test_init_runs_the_migrations_of_the_engines_own_packs(tmp_path: Path) -> None:
    from engine.services import Gmpflow

    engine = Gmpflow(fresh(tmp_path), packs=with_site_pack(tmp_path), change_control="off")
    engine.init_database()
    assert versions(engine.db) == {ENGINE_HEAD, "gmp_0002", "site_0001"} and "site_note" in tables(engine.db)
    engine.db.dispose()


SEALED_0014 = ("key", "version", "status", "content_hash", "created_by", "approved_by_instance_id",
               "activated_via")


def engine_revision(db: Database, target: str, direction: str = "downgrade") -> None:
    """The engine's branch moved to ``target`` (the packs' branches stay), with the installation's key."""
    with db.engine.begin() as connection:
        config = alembic_config(connection, pack_migrations(default_packs()), db.audit_key)
        getattr(command, direction)(config, target)


def test_a_deployment_in_review_at_0014_keeps_its_holder_and_its_seal_through_the_upgrade(
        database: Database, tmp_path: Path) -> None:
    """0014 read the holder from the trail's latest ``change_request.subject_claimed``; 0015 backfills the
    column from it for deployments in review, and reseals the rows whose MAC was intact; one changed outside
    gmpflow before the upgrade is still found after it."""
    from engine.clock import FrozenClock
    from engine.services import Gmpflow
    from gmp import governance
    from tests.test_change_request_holder import a_draft, change_request, claim, context, row

    engine = Gmpflow(database, FrozenClock(), change_control="off")
    engine.record_start()
    draft = a_draft(engine, tmp_path)
    holder, other = change_request(engine), change_request(engine)
    claim(engine, holder, draft)
    engine_revision(database, "0014")  # as 0014 left it: no column, every row sealed over 0014's columns
    assert versions(database) == {"0014", "gmp_0002"}
    assert "change_request_instance_id" not in {c["name"] for c in inspect(database.engine).get_columns(
        "deployment")}
    with database.engine.connect() as connection:
        rows = connection.execute(text(f"SELECT {', '.join(SEALED_0014)}, row_mac FROM deployment")).all()
    assert len(rows) == 3 and all(
        r[-1] == database.audit_key.deployment_mac(dict(zip(SEALED_0014, r[:-1], strict=True)), SEALED_0014)
        for r in rows)
    upgrade(database)
    assert versions(database) == {ENGINE_HEAD, "gmp_0002"} and differences(database) == []
    assert row(engine, draft) == ("in_review", holder, None)
    with database.engine.connect() as connection:  # the others were never claimed: nothing to hold
        assert connection.execute(text("SELECT count(*) FROM deployment WHERE change_request_instance_id "
                                       "IS NULL")).scalar() == 2
    assert engine.verify_audit().ok
    refused = claim(engine, other, draft)
    assert (refused["error"]["code"], refused["error"]["instance_id"]) == ("change_request_in_progress",
                                                                           holder)
    answer = governance.activate(engine, {"deployment_id": draft}, context(holder))
    assert (answer["status"], answer["approved_by_instance_id"]) == ("active", holder)
    assert engine.verify_audit().ok


# a column each revision starts to seal, changed outside gmpflow while the revision before was in force
CHANGED_BEFORE_RESEAL = {"0015": "created_by = 'mallory'", "0016": "activated_via = 'init'"}


@pytest.mark.parametrize("resealing", CHANGED_BEFORE_RESEAL)
def test_a_row_changed_outside_gmpflow_before_a_reseal_is_not_resealed_by_it(
        database: Database, tmp_path: Path, resealing: str) -> None:
    from engine.clock import FrozenClock
    from engine.services import Gmpflow
    from tests.test_change_request_holder import a_draft

    engine = Gmpflow(database, FrozenClock(), change_control="off")
    engine.record_start()
    draft = a_draft(engine, tmp_path)
    engine_revision(database, f"{int(resealing) - 1:04d}")
    with database.engine.begin() as connection:
        connection.execute(text(f"UPDATE deployment SET {CHANGED_BEFORE_RESEAL[resealing]} WHERE id = :id"),
                           {"id": draft})
    upgrade(database)
    report = engine.verify_audit()
    assert (report.ok, report.table, report.row_id) == (False, "deployment", str(draft))


def test_0015_refuses_to_run_on_sealed_rows_without_the_audit_key(tmp_path: Path) -> None:
    from engine.clock import FrozenClock
    from engine.errors import AuditKeyMissing
    from engine.services import Gmpflow

    db = fresh(tmp_path)
    engine = Gmpflow(db, FrozenClock(), change_control="off")
    engine.init_database()
    engine.deploy(ADMIN_ACTOR, [Path(__file__).resolve().parents[1] / "gmp" / "processes" / "demo_approval"])
    engine_revision(db, "0014")
    keyless = Database(db.url, audit_key_file=tmp_path / "elsewhere" / "audit.key")
    with pytest.raises(AuditKeyMissing):
        upgrade(keyless)
    assert versions(keyless) == {"0014", "gmp_0002"}  # nothing done: the upgrade is one transaction
    assert "change_request_instance_id" not in {c["name"] for c in inspect(keyless.engine).get_columns(
        "deployment")}
    keyless.dispose()
    db.dispose()


SEALED_0015 = (*SEALED_0014, "change_request_instance_id")


def sealed_over(db: Database, names: tuple[str, ...]) -> list[bool]:
    """Per deployment row: does its MAC match its columns ``names`` (read through the models' types)?"""
    from engine.store.models import Deployment

    with db.engine.connect() as connection:
        rows = connection.execute(select(*(getattr(Deployment, n) for n in names), Deployment.row_mac)
                                  .order_by(Deployment.id)).all()
    return [r[-1] == db.audit_key.deployment_mac(dict(zip(names, r[:-1], strict=True)), names) for r in rows]


def governed_world(database: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The shipped change control (came with init), a draft of the demo process claimed by one of its
    instances, the live demo version: rows with and without an activation time."""
    from engine.clock import FrozenClock
    from engine.services import Gmpflow
    from tests.test_change_request_holder import a_draft, change_request, claim

    engine = Gmpflow(database, FrozenClock(), change_control="required")
    engine.record_start()
    draft = a_draft(engine, tmp_path)
    holder = change_request(engine)
    assert claim(engine, holder, draft)["accepted"] is True
    return engine, draft, holder


def test_0016_reseals_the_deployment_rows_over_their_activation_time_and_governance_still_passes(
        database: Database, tmp_path: Path) -> None:
    """0016 adds ``activated_at`` to what a deployment row's MAC covers (change control's governance reads
    it from the sealed row): every row sealed over 0015's columns is resealed, on either backend; the engine's
    decisions and verify then stand on the new seal."""
    from gmp import governance
    from tests.test_change_request_holder import context

    engine, draft, holder = governed_world(database, tmp_path)
    engine_revision(database, "0015")  # as 0015 left it: every row sealed over 0015's columns
    assert versions(database) == {"0015", "gmp_0002"}
    assert sealed_over(database, SEALED_0015) == [True, True, True]
    upgrade(database)
    assert versions(database) == {ENGINE_HEAD, "gmp_0002"} and differences(database) == []
    assert sealed_over(database, (*SEALED_0015, "activated_at")) == [True, True, True]
    assert engine.verify_audit().ok
    answer = governance.activate(engine, {"deployment_id": draft}, context(holder))
    assert (answer["status"], answer["approved_by_instance_id"]) == ("active", holder)
    assert engine.verify_audit().ok
    with database.engine.begin() as connection:  # from here on, the activation time is sealed too
        connection.execute(text("UPDATE deployment SET activated_at = NULL WHERE id = :id"), {"id": draft})
    report = engine.verify_audit()
    assert (report.ok, report.table, report.row_id) == (False, "deployment", str(draft))
