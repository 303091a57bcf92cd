"""Backup and restore drill: a restored database verifies and its waiting instances go on."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text

from engine.backup import backup, restore
from engine.errors import GmpflowError
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store import Database
from tests.conftest import ADMIN, ROOT

DEMO = ROOT / "gmp" / "processes" / "demo_approval"


@pytest.fixture
def sqlite_engine(engine):  # type: ignore[no-untyped-def]
    if engine.db.is_postgres:
        pytest.skip("SQLite backup; PostgreSQL uses pg_dump/pg_restore")
    return engine


def test_a_restored_backup_verifies_and_its_waiting_instance_continues(sqlite_engine, users, tmp_path, clock):
    engine = sqlite_engine
    engine.deploy(ADMIN, [DEMO])
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "BKP-1")
    copy = backup(engine.db, tmp_path / "backup.db")

    fresh = Database(f"sqlite:///{tmp_path / 'restored.db'}")
    report = restore(fresh, copy)
    assert report.ok and report.checked > 0
    restored = Gmpflow(fresh, clock, change_control="off")
    assert restored.verify_audit().ok
    task = restored.list_tasks(users["operator"], instance_id=instance.id)[0]
    restored.complete_task(users["operator"], task.id, {"quantity": 3, "comment": "after restore"})
    assert restored.instance_detail(instance.id)["instance"].status == InstanceStatus.WAITING
    assert restored.verify_audit().ok
    fresh.dispose()


def test_a_backup_whose_audit_trail_was_tampered_with_is_not_restored(sqlite_engine, users, tmp_path):
    engine = sqlite_engine
    engine.deploy(ADMIN, [DEMO])
    copy = backup(engine.db, tmp_path / "backup.db")
    tampered = Database(f"sqlite:///{copy}")
    with tampered.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("UPDATE audit_event SET actor_id = 'mallory' WHERE seq = 1"))
    tampered.dispose()
    target = Database(f"sqlite:///{tmp_path / 'target.db'}")
    with pytest.raises(GmpflowError) as err:
        restore(target, copy)
    assert err.value.code == "backup_corrupt"
    assert not (tmp_path / "target.db").exists()


def test_backup_never_overwrites_an_existing_file(sqlite_engine, tmp_path):
    (tmp_path / "taken.db").write_text("precious")
    with pytest.raises(GmpflowError) as err:
        backup(sqlite_engine.db, tmp_path / "taken.db")
    assert err.value.code == "backup_target_exists"
    assert (tmp_path / "taken.db").read_text() == "precious"


def test_the_cli_backs_up_and_restores(tmp_path):
    env = {"GMPFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    gmpflow = [sys.executable, "-m", "engine.cli"]
    subprocess.run([*gmpflow, "init"], env=env, check=True, capture_output=True, cwd=ROOT)
    made = subprocess.run([*gmpflow, "backup", str(tmp_path / "b.db")], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    back = subprocess.run([*gmpflow, "restore", str(tmp_path / "b.db")], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    assert back.returncode == 0, back.stderr
    assert "audit trail verified" in back.stdout
