"""Crash safety: real ``gmpflow`` processes killed with SIGKILL at chosen points, then restarted.

A worker dies before a connector call, during it (the counterpart holds the call open while the test
kills the worker), after it, or with the task's completion written but not committed. A restarted worker
reclaims the dead worker's jobs once their lease (``GMPFLOW_JOB_LEASE_SECONDS``, 2 s here) runs out and
finishes them: each service task completes exactly once, the counterpart applies each idempotency key
once (it may be called twice), and ``gmpflow audit verify`` exits 0. A web process killed while a task
completion is in flight leaves the task completed once or still open, never half-done.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import Clock
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store import Database
from engine.store.models import AuditEvent, HumanTask, Job, ProcessInstance
from tests.conftest import ADMIN, FIXTURES, ROOT
from tests.crash_support import (
    Counterpart,
    audit_verify,
    free_port,
    gmpflow_env,
    http_json,
    kill,
    plugin_path,
    registry_with_plugin,
    serve_web,
    start,
    stop,
    wait_until,
)

INSTANCES = 3
LEASE_SECONDS = "2"
KILL_POINTS = ["job.before_call", "during_call", "job.after_call", "job.before_commit"]


def _statuses(db: Database) -> Counter[str]:
    with db.read() as session:
        return Counter(session.scalars(select(ProcessInstance.status)))


def _job_completions(db: Database) -> Counter[str]:
    """``job.completed`` audit events per task guid."""
    with db.read() as session:
        guid_of = {str(j.id): j.task_guid for j in session.scalars(select(Job))}
        return Counter(guid_of[e.object_id] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "job.completed")))


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_a_killed_worker_s_jobs_complete_exactly_once_after_restart(database: Database, tmp_path: Path,
                                                                   kill_point: str) -> None:
    counterpart = Counterpart(hold_first=kill_point == "during_call")
    try:
        engine = Gmpflow(database, Clock(), registry=registry_with_plugin(counterpart.url),
                         change_control="off")
        engine.record_start()
        engine.deploy(ADMIN, [FIXTURES / "crash_service.bpmn"])
        for i in range(INSTANCES):
            engine.start_instance(ADMIN, "crash_service", f"CRASH-{i}", {"item": f"lot-{i}"})
        with database.read() as session:
            guids = set(session.scalars(select(Job.task_guid).where(Job.kind == "service")))
        assert len(guids) == INSTANCES

        env = gmpflow_env(database.url, plugin_path(tmp_path / "plugins"),
                          GMPFLOW_AUDIT_KEY_FILE=str(database.audit_key.path),
                          GMPFLOW_CRASH_COUNTERPART_URL=counterpart.url,
                          GMPFLOW_JOB_LEASE_SECONDS=LEASE_SECONDS)
        log = tmp_path / "worker.log"
        worker_args = ["worker", "--interval", "0.2"]
        if kill_point == "during_call":
            doomed = start(worker_args, env, log)
            wait_until(counterpart.arrived.is_set, 60, "the first call to reach the counterpart", log)
            doomed.send_signal(signal.SIGKILL)
        else:
            doomed = start(worker_args, env, log, failpoint=kill_point)
        try:
            assert doomed.wait(60) == -signal.SIGKILL, log.read_text()
        finally:
            kill(doomed)  # never left running when the failpoint was not reached
        counterpart.release.set()
        calls_before_restart = sum(counterpart.calls.values())
        assert calls_before_restart == (0 if kill_point == "job.before_call" else 1)
        with database.read() as session:
            orphaned = session.scalars(select(Job).where(Job.state == "running")).all()
        assert orphaned, "the dead worker left its claimed jobs running"
        assert _statuses(database)[InstanceStatus.COMPLETED] == 0

        restarted_at = time.monotonic()
        survivor = start(worker_args, env, log)
        try:
            wait_until(lambda: _statuses(database)[InstanceStatus.COMPLETED] == INSTANCES, 60,
                       "every instance to complete after the restart", log)
        finally:
            stop(survivor)
        # the dead worker's jobs waited for their lease to run out before anyone took them again
        assert time.monotonic() - restarted_at >= float(LEASE_SECONDS) - 0.5

        assert _job_completions(database) == {guid: 1 for guid in guids}
        assert counterpart.applied == {guid: 1 for guid in guids}, "an effect was applied twice (or never)"
        if kill_point != "job.before_call":  # the interrupted call was made again, and answered from memory
            assert max(counterpart.calls.values()) == 2
        with database.read() as session:
            assert {j.state for j in session.scalars(select(Job))} == {"done"}
        verified = audit_verify(env)
        assert verified.returncode == 0, verified.stderr
    finally:
        counterpart.stop()


# -- the web process ---------------------------------------------------------------------------------------
PASSWORD = "correct horse battery"


def _serve(env: dict[str, str], log: Path) -> tuple[Any, str]:
    port = free_port()
    return serve_web(["run", "--port", str(port)], env, log, port)


@pytest.mark.parametrize("delay", [0.0, 0.004, 0.012, 0.03])
def test_a_web_process_killed_mid_request_leaves_the_task_completed_once_or_open(
        tmp_path: Path, sqlite_template: Path, delay: float) -> None:
    path = tmp_path / "gmpflow.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    engine = Gmpflow(database, Clock(), change_control="off")
    engine.record_start()
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    instance = engine.start_instance(ADMIN, "demo_approval", "KILL-1")
    with database.read() as session:
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)).one()
        version_before = session.get(ProcessInstance, instance.id).lock_version
    database.dispose()

    env = gmpflow_env(database.url, GMPFLOW_SECRET_KEY="crash-test-secret",
                      GMPFLOW_AUDIT_KEY_FILE=str(database.audit_key.path))
    log = tmp_path / "web.log"
    web, base = _serve(env, log)
    try:
        status, body = http_json("POST", f"{base}/api/v1/tokens",
                                 {"username": "olivia", "password": PASSWORD})
        assert status == 200, body
        token = body["token"]
        answers: list[Any] = []

        def complete() -> None:
            try:
                answers.append(http_json("POST", f"{base}/api/v1/tasks/{task.id}/complete",
                                        {"data": {"quantity": 5, "comment": "racing the kill"}}, token))
            except (OSError, http.client.HTTPException) as exc:  # the process died under the request:
                answers.append(exc)  # before its answer, or between the answer's headers and its body

        racer = threading.Thread(target=complete)
        racer.start()
        time.sleep(delay)
        kill(web)
        racer.join(15)
        web, base = _serve(env, log)
        with database.read() as session:
            state = session.get(HumanTask, task.id).state
            completions = session.scalars(select(AuditEvent).where(
                AuditEvent.action == "task.completed", AuditEvent.object_id == str(task.id))).all()
            row = session.get(ProcessInstance, instance.id)
            next_tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                                 HumanTask.id != task.id)).all()
        if state == "completed":  # committed before the kill: completed once, the next step is there
            assert len(completions) == 1 and len(next_tasks) == 1, (completions, next_tasks)
        else:  # killed before the commit: nothing of the completion is stored
            assert state == "open" and not completions and not next_tasks
            assert row.lock_version == version_before
            # and the task can still be completed, once
            status, body = http_json("POST", f"{base}/api/v1/tasks/{task.id}/complete",
                                    {"data": {"quantity": 5, "comment": "after the restart"}}, token)
            assert status == 200, body
        if answers and isinstance(answers[0], tuple) and answers[0][0] == 200:
            assert state == "completed", "the client was told 'completed' but nothing was stored"
        status, body = http_json("POST", f"{base}/api/v1/tasks/{task.id}/complete",
                                {"data": {"quantity": 5, "comment": "a second time"}}, token)
        assert status == 409, body
        verified = audit_verify(env)
        assert verified.returncode == 0, verified.stderr
        print(f"delay {delay * 1000:.0f} ms: task {state} when the web process died; answer {answers}")
    finally:
        stop(web)
        database.dispose()


def test_a_web_process_killed_between_writing_and_committing_a_completion_leaves_the_task_open(
        tmp_path: Path, sqlite_template: Path) -> None:
    """Deterministic companion of the race above: the web process dies at ``step.before_commit``, with the
    completion's statements sent and not committed."""
    path = tmp_path / "gmpflow.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    engine = Gmpflow(database, Clock(), change_control="off")
    engine.record_start()
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    instance = engine.start_instance(ADMIN, "demo_approval", "KILL-2")
    with database.read() as session:
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)).one()
    env = gmpflow_env(database.url, GMPFLOW_SECRET_KEY="crash-test-secret",
                      GMPFLOW_AUDIT_KEY_FILE=str(database.audit_key.path))
    log = tmp_path / "web.log"
    port = free_port()
    web, base = serve_web(["run", "--port", str(port)], {**env, "GMPFLOW_FAILPOINT": "step.before_commit"},
                          log, port)
    try:
        status, body = http_json("POST", f"{base}/api/v1/tokens",
                                 {"username": "olivia", "password": PASSWORD})
        assert status == 200, body
        token = body["token"]
        with pytest.raises(OSError):  # the process died under the request
            http_json("POST", f"{base}/api/v1/tasks/{task.id}/complete",
                      {"data": {"quantity": 5, "comment": "dies before commit"}}, token)
        assert web.wait(30) == -signal.SIGKILL
        web, base = _serve(env, log)
        with database.read() as session:
            assert session.get(HumanTask, task.id).state == "open"
            assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "task.completed")).all()
            assert session.get(ProcessInstance, instance.id).lock_version == instance.lock_version
        status, body = http_json("POST", f"{base}/api/v1/tasks/{task.id}/complete",
                                 {"data": {"quantity": 5, "comment": "after the restart"}}, token)
        assert status == 200, body
        verified = audit_verify(env)
        assert verified.returncode == 0, verified.stderr
    finally:
        stop(web)
        database.dispose()
