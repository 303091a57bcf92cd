"""Scale-out on PostgreSQL: 4 ``gmpflow worker`` processes and 2 web processes (gunicorn) on one database.

N instances of the demo approval (``GMPFLOW_SCALE_INSTANCES``, default 500) are driven concurrently
through the REST API by a thread pool, alternating between the two web processes: start, then the
operator's, the supervisor's and QA's task; the last step's service job runs on whichever worker claims
it. Every instance completes, no job ran twice (``job.completed`` events per task guid), no task was
completed twice (``task.completed`` events per task), and the audit trail verifies. Prints throughput.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.clock import Clock
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store import Database
from engine.store.models import AuditEvent, HumanTask, Job, ProcessInstance
from tests.conftest import ADMIN, ROOT
from tests.crash_support import (
    GMPFLOW,
    audit_verify,
    free_port,
    gmpflow_env,
    http_json,
    serve_web,
    start,
    stop,
    wait_until,
)
from tests.engine_support import emptied_postgres

INSTANCES = int(os.environ.get("GMPFLOW_SCALE_INSTANCES", "500"))
WORKERS, WEB_PROCESSES, CLIENT_THREADS = 4, 2, 16
PASSWORD = "correct horse battery"
PEOPLE = {"olivia": "operator", "sam": "supervisor", "quinn": "qa"}
STEPS = (("olivia", {"quantity": 5, "comment": "scale-out"}), ("sam", {"accepted": True}),
         ("quinn", {"accepted": True}))

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def postgres(postgres_database: str, tmp_path: Path) -> Iterator[Database]:
    db = emptied_postgres(postgres_database, tmp_path / "audit.key")
    yield db
    db.dispose()


def test_four_workers_and_two_web_processes_complete_every_instance_once(postgres: Database,
                                                                         tmp_path: Path) -> None:
    engine = Gmpflow(postgres, Clock(), change_control="off")
    engine.record_start()
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    for username, role in PEOPLE.items():
        engine.add_user(ADMIN, username, username.title(), PASSWORD, [role])

    env = gmpflow_env(postgres.url, GMPFLOW_SECRET_KEY="scale-out-secret",
                      GMPFLOW_AUDIT_KEY_FILE=str(postgres.audit_key.path))
    processes = []
    try:
        for i in range(WORKERS):
            processes.append(start(["worker", "--interval", "0.2"], env, tmp_path / f"worker{i}.log"))
        bases = []
        for i in range(WEB_PROCESSES):
            port = free_port()
            gunicorn = str(GMPFLOW.parent / "gunicorn")
            web, base = serve_web([gunicorn, "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{port}",
                                   "webapp:create_app()"], env, tmp_path / f"web{i}.log", port)
            processes.append(web)
            bases.append(base)
        tokens = {}
        for username in PEOPLE:
            status, body = http_json("POST", f"{bases[0]}/api/v1/tokens",
                                     {"username": username, "password": PASSWORD})
            assert status == 200, body
            tokens[username] = body["token"]

        def drive(i: int) -> int:
            base = bases[i % len(bases)]
            status, instance = http_json("POST", f"{base}/api/v1/process-definitions/demo_approval/instances",
                                         {"business_key": f"SCALE-{i}", "variables": {}}, tokens["olivia"],
                                         60)
            assert status == 201, instance
            for step, (username, data) in enumerate(STEPS):
                base = bases[(i + step + 1) % len(bases)]  # each step on the other web process
                status, tasks = http_json("GET",
                                          f"{base}/api/v1/tasks?instance_id={instance['id']}&state=open",
                                          token=tokens[username], timeout=60)
                assert status == 200 and len(tasks) == 1, tasks
                status, body = http_json("POST", f"{base}/api/v1/tasks/{tasks[0]['id']}/complete",
                                         {"data": data}, tokens[username], 60)
                assert status == 200, body
            return int(instance["id"])

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            ids = list(pool.map(drive, range(INSTANCES)))
        driven = time.perf_counter() - started

        def all_completed() -> bool:
            with postgres.read() as session:
                return session.scalar(select(func.count()).select_from(ProcessInstance).where(
                    ProcessInstance.status == InstanceStatus.COMPLETED)) == INSTANCES

        wait_until(all_completed, 120, "every instance to complete", tmp_path / "worker0.log")
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            stop(process)

    assert len(set(ids)) == INSTANCES
    with postgres.read() as session:
        assert Counter(session.scalars(select(ProcessInstance.status))) == {
            InstanceStatus.COMPLETED: INSTANCES}
        guid_of = {str(j.id): j.task_guid for j in session.scalars(select(Job))}
        job_runs = Counter(guid_of[e.object_id] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "job.completed")))
        task_completions = Counter(session.scalars(
            select(AuditEvent.object_id).where(AuditEvent.action == "task.completed")))
        completed_tasks = session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.state == "completed"))
    assert len(job_runs) == INSTANCES and set(job_runs.values()) == {1}, "a job ran twice (or never)"
    assert len(task_completions) == 3 * INSTANCES and set(task_completions.values()) == {1}
    assert completed_tasks == 3 * INSTANCES
    verified = audit_verify(env)
    assert verified.returncode == 0, verified.stderr
    requests = INSTANCES * 7
    print(f"\nscale-out on PostgreSQL: {INSTANCES} instances, {WORKERS} workers, "
          f"{WEB_PROCESSES} web processes, {CLIENT_THREADS} client threads: "
          f"API driven in {driven:.1f} s ({requests / driven:.0f} requests/s), "
          f"all completed in {elapsed:.1f} s ({INSTANCES / elapsed:.1f} instances/s)")
    shutil.rmtree(tmp_path, ignore_errors=True)
