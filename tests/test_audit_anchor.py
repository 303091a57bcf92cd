"""Checkpoints of the audit chain in an append-only file outside the database: cutting the trail's tail,
putting back an older database or replacing the head after a checkpoint is detected, and so is an edited
or removed checkpoint line."""

from __future__ import annotations

import json
import shutil
import stat
from contextlib import nullcontext
from datetime import timedelta

import pytest
from apscheduler.schedulers.blocking import BlockingScheduler
from click.testing import CliRunner
from sqlalchemy import select

from engine import worker
from engine.anchors import ANCHORED_ACTION, AnchorBroken
from engine.audit import Actor
from engine.cli import main
from engine.config import Config
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import AuditEvent
from tests.conftest import ADMIN, ROOT
from tests.engine_support import configure
from tests.tamper_support import cut_tail, head_seq, raw, rechain_plain, unguarded

DEMO = ROOT / "gmp" / "processes" / "demo_approval"


def work(engine: Gmpflow, users, business_key: str) -> None:  # type: ignore[no-untyped-def]
    """Some audited work: an instance started and its first task completed."""
    instance = engine.start_instance(users["operator"].actor, "demo_approval", business_key)
    task = engine.list_tasks(users["operator"], instance_id=instance.id)[0]
    engine.complete_task(users["operator"], task.id, {"quantity": 1, "comment": business_key})


@pytest.fixture
def anchored(engine, users):  # type: ignore[no-untyped-def]
    """A trail with work before and after one anchor."""
    engine.deploy(ADMIN, [DEMO])
    work(engine, users, "ANC-1")
    line = engine.anchor_audit(ADMIN)
    work(engine, users, "ANC-2")
    assert engine.verify_audit().ok
    return engine, line


def lines_of(engine: Gmpflow) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(text) for text in engine.anchors.path.read_text().splitlines()]


def test_gmpflow_audit_anchor_appends_a_checkpoint_of_the_chain_head(engine, users, monkeypatch):
    engine.deploy(ADMIN, [DEMO])
    head = head_seq(engine)
    monkeypatch.setattr("engine.cli._engine", lambda: engine)
    result = CliRunner().invoke(main, ["audit", "anchor"])
    assert result.exit_code == 0, result.output
    assert f"anchor 1: event {head}" in result.output
    [line] = lines_of(engine)
    with engine.db.read() as session:
        assert line["mac"] == session.get(AuditEvent, head).hash
    assert line["seq"] == head and line["at"] == engine.clock.now().isoformat(timespec="microseconds")
    assert set(line) == {"n", "seq", "mac", "at", "key_id", "prev", "line_mac"}
    recorded = engine.audit_events(action=ANCHORED_ACTION)
    assert [(e.seq, e.after["anchor"], e.after["line_mac"]) for e in recorded] == [
        (head + 1, 1, line["line_mac"])]
    assert stat.S_IMODE(engine.anchors.path.stat().st_mode) == 0o600
    assert engine.verify_audit().ok


def test_cutting_the_tail_of_the_trail_behind_a_checkpoint_is_detected(anchored):
    engine, line = anchored
    with unguarded(engine):
        cut_tail(engine, keep=line["seq"] - 2)  # the head set back consistently: the chain alone verifies
    report = engine.verify_audit()
    assert not report.ok
    assert report.first_broken == line["seq"] - 1
    assert "cut" in (report.reason or "")


def test_a_replaced_head_is_detected(anchored, users):
    """The last events deleted and others put in their place, linked as plain hashes (no key)."""
    engine, line = anchored
    last = head_seq(engine)
    with unguarded(engine):
        raw(engine, "UPDATE audit_event SET actor_id = 'mallory', actor_name = 'Mallory' WHERE seq >= :seq",
            seq=line["seq"] - 1)
        rechain_plain(engine, from_seq=line["seq"] - 1)
    report = engine.verify_audit()
    assert not report.ok and report.first_broken == line["seq"] - 1 < last


def test_an_older_copy_of_the_database_put_back_and_written_on_is_detected(tmp_path, sqlite_template, clock,
                                                                           users):
    """A fork made with the engine and its key: a copy taken before a checkpoint is put back and used; its
    chain is valid, but the event the checkpoint names is another one."""
    path = tmp_path / "gmpflow.db"
    shutil.copy(sqlite_template, path)

    def opened() -> Gmpflow:
        return Gmpflow(Database(f"sqlite:///{path}"), clock, change_control="off")

    engine = opened()
    engine.record_start()
    engine.deploy(ADMIN, [DEMO])
    engine.db.dispose()
    shutil.copy(path, tmp_path / "older.db")
    engine = opened()
    work(engine, users, "FORK-A")
    line = engine.anchor_audit(ADMIN)
    assert line is not None
    engine.db.dispose()
    shutil.copy(tmp_path / "older.db", path)  # the older copy put back
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"gmpflow.db{suffix}").unlink(missing_ok=True)
    engine = opened()
    assert not engine.verify_audit().ok  # the trail ends before the checkpoint
    work(engine, users, "FORK-B")  # ... and written on until it is longer than the checkpoint
    work(engine, users, "FORK-C")
    assert head_seq(engine) > line["seq"]
    report = engine.verify_audit()
    assert not report.ok and report.first_broken == line["seq"]
    assert "replaced" in (report.reason or "")
    engine.db.dispose()


def _edit_line(lines: list[str], number: int) -> list[str]:
    line = json.loads(lines[number - 1])
    line["seq"] -= 1
    return [*lines[:number - 1], json.dumps(line), *lines[number:]]


LINE_TAMPERING = {
    "edited": lambda lines: _edit_line(lines, 2),
    "removed from the middle": lambda lines: [lines[0], lines[2]],
    "removed from the end": lambda lines: lines[:2],
    "reordered": lambda lines: [lines[1], lines[0], lines[2]],
    "all removed": lambda lines: [],
}


@pytest.mark.parametrize("case", LINE_TAMPERING, ids=list(LINE_TAMPERING))
def test_an_edited_or_removed_checkpoint_line_is_detected(anchored, users, case):
    engine, _ = anchored
    work(engine, users, "ANC-3")
    engine.anchor_audit(ADMIN)
    work(engine, users, "ANC-4")
    engine.anchor_audit(ADMIN)
    assert engine.verify_audit().ok
    lines = engine.anchors.path.read_text().splitlines()
    tampered = LINE_TAMPERING[case](lines)
    engine.anchors.path.write_text("".join(text + "\n" for text in tampered))
    report = engine.verify_audit()
    assert not report.ok
    assert "anchor" in (report.reason or "")
    broken_file = case in ("edited", "removed from the middle", "reordered")
    with pytest.raises(AnchorBroken) if broken_file else nullcontext():
        engine.anchor_audit(ADMIN)  # no new checkpoint is chained onto a file that does not verify


def test_the_anchor_file_is_only_ever_appended_to(anchored, users):
    engine, _ = anchored
    before = engine.anchors.path.read_bytes()
    work(engine, users, "ANC-5")
    engine.anchor_audit(ADMIN)
    after = engine.anchors.path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1


def test_the_scheduler_anchors_hourly_by_default_and_as_the_setting_says(engine):
    configure(engine, audit_anchor_interval=Config().audit_anchor_interval)
    scheduler = BlockingScheduler()
    worker._add(scheduler, engine, 1.0)
    job = scheduler.get_job("gmpflow-audit-anchor")
    assert job is not None and job.trigger.interval == timedelta(hours=1)
    assert job.func is worker.anchor_tick
    configure(engine, audit_anchor_interval=Config.from_environ({"GMPFLOW_AUDIT_ANCHOR_INTERVAL": "0"})
              .audit_anchor_interval)
    scheduler = BlockingScheduler()
    worker._add(scheduler, engine, 1.0)
    assert scheduler.get_job("gmpflow-audit-anchor") is None


def test_the_scheduled_anchor_writes_a_checkpoint_only_when_the_trail_moved(engine, users, clock):
    engine.deploy(ADMIN, [DEMO])
    worker.anchor_tick(engine)
    assert [line["at"] for line in lines_of(engine)] == [clock.now().isoformat(timespec="microseconds")]
    clock.advance(hours=1)
    worker.anchor_tick(engine)  # only its own audit.anchored event since: nothing to anchor
    assert len(lines_of(engine)) == 1
    work(engine, users, "TICK-1")
    clock.advance(hours=1)
    worker.anchor_tick(engine)
    second = lines_of(engine)[1]
    assert second["n"] == 2 and second["at"] == clock.now().isoformat(timespec="microseconds")
    assert second["seq"] == head_seq(engine) - 1  # its audit.anchored event follows
    with engine.db.read() as session:
        actors = set(session.scalars(select(AuditEvent.actor_id).where(AuditEvent.action == ANCHORED_ACTION)))
    assert actors == {Actor.system().id}
    assert engine.verify_audit().ok
