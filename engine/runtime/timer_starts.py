"""Timer start events: a process whose start event has a timer gets a ``timer_start`` job while its
version is active; when due, the job starts an instance and, for a cycle (``R3/PT1H``), schedules the
next one. Retiring the version cancels the pending job. Jobs are rows, so schedules survive restarts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.runtime.rows import announce_jobs
from engine.spiff import events
from engine.spiff.parsing import ParsedDefinition
from engine.states import DeploymentStatus, JobState
from engine.store.dbapi import dbapi
from engine.store.models import Deployment, Job

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime


def start_timer(parsed: ParsedDefinition) -> tuple[Any, Any] | None:
    return events.timer_start(parsed.spec)


first_due = events.first_due


def schedule(session: Session, runtime: InstanceRuntime, dep: Deployment, now: datetime) -> None:
    """Give an activated version its timer-start job, if its process starts on a timer."""
    found = start_timer(runtime.specs.get(dep))
    if found is None:
        return
    spec, definition = found
    from engine.spiff import clock as clocked

    token = clocked.CURRENT_CLOCK.set(runtime.clock)
    try:
        value = str(runtime.script_engine.environment.evaluate(definition.expression, {}))
        due, cycles, every = first_due(definition, value, now)
    finally:
        clocked.CURRENT_CLOCK.reset(token)
    _insert(session, dep, spec.bpmn_id, due, cycles, every, now)


def _insert(session: Session, dep: Deployment, element_id: str, due: datetime, cycles: int, every: float,
            now: datetime) -> None:
    session.execute(insert(Job), [dict(kind="timer_start", deployment_id=dep.id, element_id=element_id,
                                       payload={"cycles": cycles, "every_seconds": every},
                                       state=JobState.PENDING, due_at=due, attempts=0, max_attempts=3,
                                       created_at=now, updated_at=now)])
    announce_jobs(dbapi(session))  # a transaction that wrote jobs through the ORM


def cancel(session: Session, dep: Deployment, now: datetime) -> None:
    session.execute(update(Job).where(Job.kind == "timer_start", Job.deployment_id == dep.id,
                                      Job.state == JobState.PENDING)
                    .values(state=JobState.CANCELLED, updated_at=now))


def fire(runtime: InstanceRuntime, job_id: int, owner: str) -> None:
    """Start the instance for a due timer-start job and schedule the next cycle, in one transaction."""
    now = runtime.clock.now()
    with runtime.db.transaction() as uow:
        session = uow.session
        job = session.get(Job, job_id)
        if job is None or job.state != JobState.RUNNING or job.locked_by != owner:
            return
        job.state, job.locked_by, job.lock_expires_at, job.updated_at = JobState.DONE, None, None, now
        dep = session.get(Deployment, job.deployment_id)
        if dep is None or dep.status != DeploymentStatus.ACTIVE:
            return
        def fire_start_event(workflow: Any) -> None:
            runtime.run_engine(workflow)  # the start event waits on its timer only once engine steps ran
            events.fire_timer_start(workflow)

        live = runtime.create(uow, dep, None, {}, Actor.system(), prepare=fire_start_event)
        cycles = int(job.payload.get("cycles", 1))
        if cycles != 1:  # -1: unbounded, n > 1: n - 1 left after this one
            _insert(session, dep, job.element_id or "",
                    job.due_at + timedelta(seconds=job.payload["every_seconds"]),
                    cycles - 1 if cycles > 1 else -1, job.payload["every_seconds"], now)
        audit.record(session, Actor.system(), "timer_start.fired", "deployment", dep.id,
                     f"{dep.key} v{dep.version}", at=now,
                     after={"instance_id": live.row.id, "due_at": job.due_at})
    runtime.remember_created(uow)
