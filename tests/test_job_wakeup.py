"""No tick: a job a commit makes due starts at once, a timer fires when its due time comes, and the poll is
only a safety net.

Every worker here polls once an hour, so a job that runs within the test ran because the worker was woken:
by the commit that wrote it (in this process: the database's ``jobs_due`` signal; from another process on
PostgreSQL: ``NOTIFY``), or by the injected clock reaching the job's due time. Nothing sleeps: the test
waits on the worker's own report of each round (``after_round``), with a generous guard against a hang.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.states import InstanceStatus, JobState
from engine.store import Database
from engine.worker import BackgroundWorker, start_background_worker

AN_HOUR = 3600.0  # the poll interval: never reached within a test
GUARD = 120.0  # seconds before a wait is declared hung (the job is not expected to take anywhere near it)


class Rounds:
    """The worker's rounds as it reports them; ``until`` waits for a round that leaves ``check`` true."""

    def __init__(self) -> None:
        self.ran: queue.Queue[int] = queue.Queue()

    def __call__(self, ran: int) -> None:
        self.ran.put(ran)

    def until(self, check, what: str) -> None:  # type: ignore[no-untyped-def]
        while not check():
            try:
                self.ran.get(timeout=GUARD)
            except queue.Empty:
                pytest.fail(f"the worker was not woken: {what}")


@pytest.fixture
def rounds() -> Rounds:
    return Rounds()


@pytest.fixture
def worker(engine: Gmpflow, rounds: Rounds) -> Iterator[BackgroundWorker]:
    running = start_background_worker(engine, interval=AN_HOUR, after_round=rounds)
    yield running
    running.shutdown(wait=True)


def job_states(engine: Gmpflow, instance_id: int) -> list[tuple[str, str]]:
    return sorted((j.kind, j.state) for j in engine.instance_detail(instance_id)["jobs"])


def test_a_service_job_made_due_by_a_commit_runs_without_waiting_for_the_poll(
        engine, deploy, users, worker, rounds):
    deploy("restart_survival.bpmn")
    instance = engine.start_instance(users["operator"].actor, "restart_survival", "LOT-W",
                                     {"material": "API-7"})
    rounds.until(lambda: ("service", JobState.DONE) in job_states(engine, instance.id),
                 "the service job the start committed")
    assert engine.instance_detail(instance.id)["variables"]["reserved"] == {"material": "API-7"}
    assert ("timer", JobState.PENDING) in job_states(engine, instance.id)  # its time has not come


def test_a_timer_fires_when_the_clock_reaches_its_due_time(
        engine, deploy, users, worker, rounds, clock: FrozenClock):
    deploy("timer_duration.bpmn")
    instance = engine.start_instance(users["operator"].actor, "timer_duration", None, {"cure_time": "PT45M"})
    assert job_states(engine, instance.id) == [("timer", JobState.PENDING)]
    clock.advance(minutes=46)  # past the due time: the waiting worker wakes, fires it, then the service call
    rounds.until(lambda: job_states(engine, instance.id) == [("service", JobState.DONE),
                                                             ("timer", JobState.DONE)],
                 "the timer due at 08:45 and the service call it made due")
    assert engine.instance_detail(instance.id)["instance"].status == InstanceStatus.WAITING  # on 'inspect'


def test_a_worker_of_another_process_is_woken_by_notify(engine, deploy, users, clock, tmp_path):
    """Two engines on their own connection pools, as two processes have: a commit on one wakes the other's
    worker through PostgreSQL's LISTEN/NOTIFY, not through this process's signal."""
    if not engine.db.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite the workers share the web app's process")
    other = Gmpflow(Database(engine.db.url, audit_key_file=tmp_path / "audit.key"), clock,
                    change_control="off")
    assert other.db.jobs_due is not engine.db.jobs_due
    rounds = Rounds()
    running = start_background_worker(other, interval=AN_HOUR, after_round=rounds)
    try:
        deploy("restart_survival.bpmn")
        instance = engine.start_instance(users["operator"].actor, "restart_survival", "LOT-N",
                                         {"material": "API-9"})
        rounds.until(lambda: ("service", JobState.DONE) in job_states(engine, instance.id),
                     "the service job committed by the other engine")
        assert running.loop.listener is not None and running.loop.listener.notices >= 1
    finally:
        running.shutdown(wait=True)
        other.db.dispose()
