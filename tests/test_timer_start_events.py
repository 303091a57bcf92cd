"""Timer start events: a cycle starts one instance per occurrence; the schedule survives restarts
and ends when the version is retired."""

from __future__ import annotations

from engine.services import Gmpflow
from tests.conftest import ADMIN, FIXTURES


def started(engine: Gmpflow, key: str) -> int:
    return engine.list_instances(key=key)[1]


def test_a_cycle_timer_starts_one_instance_per_occurrence_and_stops_after_its_repetitions(engine, deploy,
                                                                                          clock):
    deploy("timer_start_cycle.bpmn")
    engine.run_jobs_once()
    assert started(engine, "poll_erp") == 0  # 08:00; the first occurrence is at 09:00
    clock.advance(hours=1, seconds=1)
    engine.run_jobs_once()
    assert started(engine, "poll_erp") == 1
    clock.advance(hours=5)
    engine.run_jobs_once()  # 10:00 and 11:00 are due; R3 means three in all
    engine.run_jobs_once()
    assert started(engine, "poll_erp") == 3
    clock.advance(hours=5)
    engine.run_jobs_once()
    assert started(engine, "poll_erp") == 3


def test_an_instance_started_by_the_timer_runs_past_its_start_event(engine, deploy, clock, users):
    deploy("timer_start_duration.bpmn")
    clock.advance(minutes=31)
    engine.run_jobs_once()
    instances, total = engine.list_instances(key="delayed_start")
    assert total == 1
    tasks = engine.list_tasks(users["admin"], instance_id=instances[0].id)
    assert [t.element_id for t in tasks] == ["check"]
    assert any(e.action == "timer_start.fired" for e in engine.audit_events(limit=500))


def test_the_schedule_survives_a_restart(database, clock, deploy):
    deploy("timer_start_duration.bpmn")
    restarted = Gmpflow(database, clock, change_control="off")
    clock.advance(minutes=31)
    restarted.run_jobs_once()
    assert started(restarted, "delayed_start") == 1


def test_retiring_the_version_cancels_its_schedule(engine, deploy, clock, tmp_path):
    deploy("timer_start_duration.bpmn")
    changed = tmp_path / "v2"
    changed.mkdir()
    (changed / "timer_start_duration.bpmn").write_text(
        (FIXTURES / "timer_start_duration.bpmn").read_text().replace('"PT30M"', '"PT2H"'))
    engine.deploy(ADMIN, [changed])
    clock.advance(minutes=31)
    engine.run_jobs_once()
    assert started(engine, "delayed_start") == 0  # v1's schedule is gone; v2 fires at 10:00
    clock.advance(hours=2)
    engine.run_jobs_once()
    assert started(engine, "delayed_start") == 1
