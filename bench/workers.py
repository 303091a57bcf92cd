"""``gmpflow bench``, worker scaling: service jobs run by 1, 2 and 4 ``gmpflow worker`` processes.

Each run gets a fresh database (a temporary SQLite file, or a temporary database on the PostgreSQL
server of ``GMPFLOW_BENCH_POSTGRES_URL``, dropped afterwards) holding ``jobs`` instances that each wait on
one service job, of one of two kinds:

- ``erp``: the job reads a production order from an ERP that answers in ``ERP_LATENCY`` seconds (the
  simulator connector, ``GMPFLOW_ERP=simulator``, against a stand-in served by this module), as a service
  task of a real process does. This is what scale-out is for: a worker waits on the counterpart, and more
  workers wait in parallel. The headline ``postgres.workers_4_over_1`` is this kind's.
- ``echo``: the job calls the built-in ``echo``, no outside system: the engine's own cost per job (claim,
  step, commit), which more processes cannot beat on a machine whose cores they already fill.

The jobs are held (due in the far future) until every worker has started and logged that it is ready, then
released at once; the throughput is the number of jobs done per second from the release to the last
completion, so process start-up is not counted and no worker starts ahead of the others. Each run also
counts the jobs executed more than once (completions per job from the audit trail; for ``erp`` also the
counterpart's calls per order): always 0, or the run fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.pool import NullPool

from connectors.plugins import build_registry
from engine.audit import Actor
from engine.clock import Clock
from engine.errors import GmpflowError
from engine.services import Gmpflow
from engine.states import InstanceStatus, JobState
from engine.store import Database
from engine.store.models import AuditEvent, Job, ProcessInstance
from engine.store.wakeup import JOBS_CHANNEL

JOBS = {"echo": (Path(__file__).parent / "data" / "jobs.bpmn", "bench_jobs"),
        "erp": (Path(__file__).parent / "data" / "jobs_erp.bpmn", "bench_erp_jobs")}
ERP_LATENCY = 0.02  # seconds the stand-in ERP takes to answer: a fast ERP on the same network
HELD_UNTIL = datetime(2999, 1, 1, tzinfo=UTC)  # a held job's due time
READY_LINE = "gmpflow worker: jobs run when due"  # what a worker logs once it polls (engine.worker)
POSTGRES_ENV = "GMPFLOW_BENCH_POSTGRES_URL"  # or the test suite's GMPFLOW_TEST_POSTGRES_URL, or --postgres
TEST_POSTGRES_ENV = "GMPFLOW_TEST_POSTGRES_URL"
WORKER_COUNTS = (1, 2, 4)


def postgres_url() -> str | None:
    """The PostgreSQL server the bench may create databases on, when one is configured."""
    return os.environ.get(POSTGRES_ENV) or os.environ.get(TEST_POSTGRES_ENV) or None


@contextmanager
def _database(kind: str, run: int) -> Iterator[str]:
    """A fresh, empty database URL for one run."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    server = postgres_url()
    assert server, "no PostgreSQL server configured"
    name = f"gmpflow_bench_{os.getpid()}_{run}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _completed(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.status == InstanceStatus.COMPLETED)) or 0)


class _StandInErp:
    """The ERP's order read (``GET /orders/<n>``, as the simulator serves it) answering after
    ``ERP_LATENCY``, counting the calls per order."""

    def __init__(self) -> None:
        calls: Counter[str] = Counter()
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                time.sleep(ERP_LATENCY)
                number = self.path.rsplit("/", 1)[-1]
                with lock:
                    calls[number] += 1
                body = json.dumps({"id": int(number), "number": f"MO-{number}", "state": "waiting",
                                   "product": "TAB-100", "quantity": 1, "unit": "u"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.calls = calls
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait_until_ready(processes: list[subprocess.Popen[bytes]], logs: list[Path], deadline: float) -> None:
    for process, log in zip(processes, logs, strict=True):
        while READY_LINE not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise GmpflowError(f"a bench worker did not start: {log.read_text(errors='replace')[-2000:]}",
                                   code="bench_timeout")
            time.sleep(0.05)


def _set_due(db: Database, due_at: datetime) -> None:
    """Hold or release every pending job (the bench's own database: no guarantee is at stake)."""
    with db.engine.begin() as conn:
        conn.execute(update(Job).where(Job.state == JobState.PENDING).values(due_at=due_at))
        if db.is_postgres:
            conn.execute(text(f"NOTIFY {JOBS_CHANNEL}"))  # as the commit that makes a job due does


def one_run(url: str, workers: int, jobs: int, kind: str = "erp", timeout: float = 300) -> dict[str, Any]:
    """``jobs`` service jobs of ``kind`` run by ``workers`` worker processes: jobs/s and duplicates."""
    db, erp = Database(url), _StandInErp() if kind == "erp" else None
    env = {**os.environ, "GMPFLOW_DATABASE_URL": url, "GMPFLOW_CHANGE_CONTROL": "off",
           "GMPFLOW_ERP": "simulator", "GMPFLOW_ERP_URL": erp.url if erp else ""}
    model, process_id = JOBS[kind]
    try:
        engine = Gmpflow(db, Clock(), change_control="off", registry=build_registry(env))
        engine.init_database()
        engine.deploy(Actor.system(), [model])
        for n in range(jobs):
            engine.start_instance(Actor.system(), process_id, f"JOB-{n}", {"n": n})
        _set_due(db, HELD_UNTIL)
        command = [sys.executable, "-m", "engine.cli", "worker", "--interval", "0.05"]
        with tempfile.TemporaryDirectory() as folder:
            logs = [Path(folder) / f"worker-{w}.log" for w in range(workers)]
            processes = []
            for log in logs:
                with log.open("wb") as out:
                    processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            try:
                deadline = time.monotonic() + timeout
                _wait_until_ready(processes, logs, deadline)
                released = engine.clock.now()
                _set_due(db, released)
                while _completed(db) < jobs:
                    if time.monotonic() > deadline:
                        raise GmpflowError(f"{workers} workers did not finish {jobs} jobs in {timeout} s.",
                                           code="bench_timeout")
                    time.sleep(0.05)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(30)
        with db.read() as session:
            completions = Counter(session.scalars(select(AuditEvent.object_id).where(
                AuditEvent.action == "job.completed")))
            last = session.scalar(select(func.max(AuditEvent.at)).where(AuditEvent.action == "job.completed"))
        duplicates = sum(n - 1 for n in completions.values()) + (
            sum(n - 1 for n in erp.calls.values()) if erp else 0)
        if duplicates or len(completions) != jobs:
            raise GmpflowError(f"{workers} workers ran {len(completions)} of {jobs} jobs, {duplicates} more "
                               "than once.", code="bench_duplicate_execution")
        assert last is not None  # every job completed
        seconds = max((last - released).total_seconds(), 1e-6)
        return {"workers": workers, "jobs": jobs, "kind": kind, "seconds": round(seconds, 3),
                "per_second": round(jobs / seconds, 1), "duplicates": duplicates,
                "counterpart_calls": sum(erp.calls.values()) if erp else None}
    finally:
        db.dispose()
        if erp:
            erp.stop()


def worker_scaling(jobs: int, kind: str = "erp") -> dict[str, list[dict[str, Any]]]:
    """Jobs of ``kind`` per second for each worker count, on SQLite and (when configured) on PostgreSQL."""
    backends = ["sqlite"] + (["postgres"] if postgres_url() else [])
    figures: dict[str, list[dict[str, Any]]] = {}
    run = 0
    for backend in backends:
        figures[backend] = []
        for workers in WORKER_COUNTS:
            run += 1
            with _database(backend, run) as url:
                figures[backend].append(one_run(url, workers, jobs, kind))
    return figures
