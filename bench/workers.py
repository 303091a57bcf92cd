"""``gmpflow bench``, worker scaling: service jobs run by 1, 2 and 4 ``gmpflow worker`` processes.

Each run gets a fresh database (a temporary SQLite file, or a temporary database on the PostgreSQL
server of ``GMPFLOW_BENCH_POSTGRES_URL``, dropped afterwards) holding ``jobs`` instances that each wait on
one service job (``echo``). The workers are started, and the throughput is the number of jobs completed
per second between the first and the last completion (process start-up is not counted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from engine.audit import Actor
from engine.clock import Clock
from engine.errors import GmpflowError
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store import Database
from engine.store.models import AuditEvent, ProcessInstance

JOBS = Path(__file__).parent / "data" / "jobs.bpmn"
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


def one_run(url: str, workers: int, jobs: int, timeout: float = 300) -> dict[str, Any]:
    db = Database(url)
    try:
        engine = Gmpflow(db, Clock(), change_control="off")
        engine.init_database()
        engine.deploy(Actor.system(), [JOBS])
        for n in range(jobs):
            engine.start_instance(Actor.system(), "bench_jobs", f"JOB-{n}", {"n": n})
        env = {**os.environ, "GMPFLOW_DATABASE_URL": url, "GMPFLOW_CHANGE_CONTROL": "off"}
        command = [sys.executable, "-m", "engine.cli", "worker", "--interval", "0.05"]
        processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(workers)]
        try:
            deadline = time.monotonic() + timeout
            while _completed(db) < jobs:
                if time.monotonic() > deadline:
                    raise GmpflowError(f"{workers} workers did not finish {jobs} jobs in {timeout} s.",
                                       code="bench_timeout")
                time.sleep(0.2)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
        with db.read() as session:
            first, last = session.execute(select(func.min(AuditEvent.at), func.max(AuditEvent.at)).where(
                AuditEvent.action == "job.completed")).one()
        seconds = max((last - first).total_seconds(), 1e-6)
        return {"workers": workers, "jobs": jobs, "seconds": round(seconds, 3),
                "per_second": round((jobs - 1) / seconds, 1)}
    finally:
        db.dispose()


def worker_scaling(jobs: int) -> dict[str, list[dict[str, Any]]]:
    """Jobs per second for each worker count, on SQLite and (when configured) on PostgreSQL."""
    kinds = ["sqlite"] + (["postgres"] if postgres_url() else [])
    figures: dict[str, list[dict[str, Any]]] = {}
    run = 0
    for kind in kinds:
        figures[kind] = []
        for workers in WORKER_COUNTS:
            run += 1
            with _database(kind, run) as url:
                figures[kind].append(one_run(url, workers, jobs))
    return figures
