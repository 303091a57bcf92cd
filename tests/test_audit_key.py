"""The audit chain is keyed (HMAC-SHA-256) with a key kept outside the database: someone who can write the
database but not read the key file cannot rewrite events and recompute the links."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from engine.audit import GENESIS, KEYED_ACTION, event_hash
from engine.cli import main
from engine.config import Config
from engine.errors import AuditKeyMissing, GmpflowError
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import AuditEvent, AuditHead
from tests.conftest import ADMIN, ROOT
from tests.tamper_support import raw, rechain_plain, unguarded

DEMO = ROOT / "gmp" / "processes" / "demo_approval"


@pytest.fixture
def trail(engine, users):  # type: ignore[no-untyped-def]
    """A database with some history: a deployment, an instance, a completed task."""
    engine.deploy(ADMIN, [DEMO])
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "KEY-1")
    task = engine.list_tasks(users["operator"], instance_id=instance.id)[0]
    engine.complete_task(users["operator"], task.id, {"quantity": 2, "comment": "keyed"})
    assert engine.verify_audit().ok
    return engine


@pytest.fixture
def cli():  # type: ignore[no-untyped-def]
    """``cli(*args, env=...)``: the ``gmpflow`` command in this process (each command closes its engine's
    connections as it ends)."""
    return lambda *args, env=None: CliRunner().invoke(main, list(args), env=env)


def cli_env(engine: Gmpflow) -> dict[str, str]:
    """The CLI on this engine's database and key file."""
    return {"GMPFLOW_DATABASE_URL": engine.db.url, "GMPFLOW_AUDIT_KEY_FILE": str(engine.db.audit_key.path)}


def seq_of(engine: Gmpflow, action: str) -> int:
    with engine.db.read() as session:
        return int(session.scalar(select(AuditEvent.seq).where(AuditEvent.action == action)) or 0)


def test_init_creates_the_key_outside_the_database_readable_by_its_owner_only(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("GMPFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'instance' / 'gmpflow.db'}")
    monkeypatch.delenv("GMPFLOW_AUDIT_KEY_FILE", raising=False)
    monkeypatch.setenv("GMPFLOW_CHANGE_CONTROL", "off")
    (tmp_path / "instance").mkdir()
    result = cli("init")
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "instance" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(bytes.fromhex(key)) == 32
    database = (tmp_path / "instance" / "gmpflow.db").read_bytes()
    assert key.encode() not in database and bytes.fromhex(key) not in database
    verify = cli("audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_every_link_from_the_key_introduction_on_is_a_mac_with_the_key(trail):
    keyed = seq_of(trail, KEYED_ACTION)
    with trail.db.read() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        head = session.get(AuditHead, 1)
    assert keyed == 1 and head is not None and head.keyed_from == 1  # a fresh database: keyed from its start
    assert events[0].after["key_id"] == trail.db.audit_key.key_id
    assert trail.db.audit_key.key.hex() not in json.dumps([e.after for e in events])
    for ev in events:
        assert ev.hash == event_hash(ev, trail.db.audit_key) != event_hash(ev)


def test_a_consistent_rewrite_with_recomputed_sha256_links_is_detected(trail, cli):
    completed = seq_of(trail, "task.completed")
    with unguarded(trail):
        raw(trail, "UPDATE audit_event SET after = :after WHERE seq = :seq",
            after=json.dumps({"state": "completed", "data": {"quantity": 999}}), seq=completed)
        rechain_plain(trail, from_seq=completed)
    report = trail.verify_audit()
    assert not report.ok
    assert report.first_broken == completed
    assert "without the audit key" in (report.reason or "")
    result = cli("audit", "verify", env=cli_env(trail))
    assert result.exit_code == 1
    assert f"broken at sequence {completed}" in result.output


def test_a_whole_chain_rewritten_without_its_key_event_is_detected(trail):
    """Drop the key introduction and re-number and re-link everything as plain hashes: still found."""
    with unguarded(trail):
        raw(trail, "DELETE FROM audit_event WHERE action = :keyed", keyed=KEYED_ACTION)
        raw(trail, "UPDATE audit_event SET seq = -seq", "UPDATE audit_event SET seq = -seq - 1")
        raw(trail, "UPDATE audit_head SET keyed_from = NULL")
        rechain_plain(trail)
    report = trail.verify_audit()
    assert not report.ok
    assert report.first_broken == 1
    assert "audit.keyed" in (report.reason or "")


def test_verify_without_the_key_file_says_so_clearly(trail, cli):
    key_file = trail.db.audit_key.path
    key_file.unlink()
    fresh = Gmpflow(Database(trail.db.url, audit_key_file=key_file), trail.clock, change_control="off")
    report = fresh.verify_audit()
    assert not report.ok
    assert str(key_file) in (report.reason or "") and "missing" in (report.reason or "")
    result = cli("audit", "verify", env=cli_env(trail))
    assert result.exit_code == 1
    assert "missing" in result.output and "Traceback" not in result.output
    fresh.db.dispose()


def test_nothing_is_written_without_the_key_file(trail, users):
    key_file = trail.db.audit_key.path
    key_file.unlink()
    fresh = Gmpflow(Database(trail.db.url, audit_key_file=key_file), trail.clock, change_control="off")
    count = trail.audit_events(limit=10_000)
    with pytest.raises(AuditKeyMissing):
        fresh.start_instance(users["operator"].actor, "demo_approval", "KEY-2")
    with pytest.raises(AuditKeyMissing):
        fresh.record_start()  # `gmpflow run` and `worker` stop at once, saying why
    assert not key_file.exists()  # a keyed trail never gets a new key silently
    assert len(trail.audit_events(limit=10_000)) == len(count)
    fresh.db.dispose()


def test_a_trail_verified_with_another_key_file_says_so(trail, tmp_path):
    other = tmp_path / "other" / "audit.key"
    other.parent.mkdir()
    other.write_text(bytes(range(32)).hex())
    elsewhere = Gmpflow(Database(trail.db.url, audit_key_file=other), trail.clock, change_control="off")
    report = elsewhere.verify_audit()
    assert not report.ok and report.first_broken == 1
    assert "another key" in (report.reason or "")
    elsewhere.db.dispose()


def test_writes_are_refused_until_the_key_is_introduced(database, clock):
    engine = Gmpflow(database, clock, change_control="off")  # never started: no key event yet
    database.audit_key.create()  # a key file alone does not key the trail; its recorded introduction does
    with pytest.raises(GmpflowError) as refused:
        engine.add_user(ADMIN, "olivia", "Olivia Operator", "correct horse battery", [])
    assert refused.value.code == "audit_not_keyed"
    assert engine.audit_events() == [] and engine.list_users() == []


def test_a_trail_from_before_the_key_is_keyed_from_a_recorded_event_and_its_plain_links_still_verify(
        database, clock):
    """A database created before the key: its events keep their SHA-256 links; the audit.keyed event,
    whose own MAC covers the last of them, records the key's id and the rows sealed as found."""
    old = datetime(2025, 6, 1, tzinfo=timezone.utc)
    prev = GENESIS
    with database.engine.begin() as conn:
        for seq in (1, 2):
            ev = {"seq": seq, "at": old, "actor_id": "system", "actor_name": "gmpflow engine",
                  "action": "setting.change_control", "object_type": "setting", "object_id": "change_control",
                  "object_label": "legacy", "before": None, "after": {"mode": "off", "n": seq},
                  "reason": None, "correlation_id": None, "prev_hash": prev}
            ev["hash"] = prev = event_hash(ev)
            conn.execute(AuditEvent.__table__.insert().values(**ev))
        conn.execute(text("DELETE FROM audit_head"))
        conn.execute(text("INSERT INTO audit_head (id, seq, hash, keyed_from) VALUES (1, 2, :hash, NULL)"),
                     {"hash": prev})
    engine = Gmpflow(database, clock, change_control="off")
    engine.record_start()
    keyed = engine.audit_events(action=KEYED_ACTION)
    assert [e.seq for e in keyed] == [3]
    assert keyed[0].after["key_id"] == database.audit_key.key_id
    assert engine.verify_audit().ok
    engine.deploy(ADMIN, [DEMO])
    assert engine.verify_audit().ok
    with unguarded(engine):  # an edit before the key: the plain link breaks, and so does the keyed event's
        raw(engine, "UPDATE audit_event SET object_label = 'forged' WHERE seq = 2")
        rechain_plain(engine, from_seq=2)
    report = engine.verify_audit()
    assert not report.ok and report.first_broken == 3


def test_the_key_file_is_looked_for_next_to_the_sqlite_database_or_where_the_setting_says(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert Database(sqlite).audit_key.path == tmp_path / "audit.key"
    assert Database("postgresql+psycopg://u@h/db").audit_key.path == Path("instance") / "audit.key"
    configured = Config.from_environ({"GMPFLOW_DATABASE_URL": sqlite,
                                      "GMPFLOW_AUDIT_KEY_FILE": str(tmp_path / "keys" / "gmp.key")})
    engine = Gmpflow(config=configured)
    assert (engine.db.url, engine.db.audit_key.path) == (sqlite, tmp_path / "keys" / "gmp.key")
    assert engine.anchors.path == tmp_path / "keys" / "audit-anchors.jsonl"
    engine.db.dispose()


def test_a_command_leaves_no_database_connection_open_when_it_ends(trail, cli, monkeypatch):
    """Each ``gmpflow`` command closes its engine's connections as it ends: a connection left to the garbage
    collector is a ResourceWarning at some later, unrelated moment (and on PostgreSQL a server slot held)."""
    import engine.cli

    made: list[Gmpflow] = []
    real = engine.cli._engine
    monkeypatch.setattr("engine.cli._engine", lambda: made.append(real()) or made[-1])
    assert cli("audit", "verify", env=cli_env(trail)).exit_code == 0
    [command_engine] = made
    assert command_engine.db.engine.pool.checkedin() == 0  # disposed: nothing kept for reuse either
