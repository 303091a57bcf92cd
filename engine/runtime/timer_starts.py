"""Timer start events: a process whose start event has a timer gets a ``timer_start`` job while its
version is active; when due, the job starts an instance and, for a cycle (``R3/PT1H``), schedules the
next one. Retiring the version cancels the pending job. Jobs are rows, so schedules survive restarts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.spiff.parsing import ParsedDefinition
from engine.states import DeploymentStatus, JobState
from engine.store.db import announce_jobs
from engine.store.models import Deployment, Job

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime


def start_timer(parsed: ParsedDefinition) -> tuple[Any, TimerEventDefinition] | None:
    for spec in parsed.spec.task_specs.values():
        definition = getattr(spec, "event_definition", None)
        if isinstance(spec, StartEvent) and isinstance(definition, TimerEventDefinition):
            return spec, definition
    return None


def first_due(definition: TimerEventDefinition, expression_value: str,
              now: datetime) -> tuple[datetime, int, float]:
    """(first due time, cycles (-1: unbounded, 1: once), seconds between cycles)."""
    if isinstance(definition, CycleTimerEventDefinition):
        cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(expression_value)
        return start, cycles, duration.total_seconds()
    if isinstance(definition, DurationTimerEventDefinition):
        parsed = TimerEventDefinition.parse_iso_duration(expression_value)
        return now + TimerEventDefinition.get_timedelta_from_start(parsed, now), 1, 0.0
    return TimerEventDefinition.get_datetime(expression_value), 1, 0.0


def schedule(session: Session, runtime: InstanceRuntime, dep: Deployment, now: datetime) -> None:
    """Give an activated version its timer-start job, if its process starts on a timer."""
    found = start_timer(runtime.specs.get(dep))
    if found is None:
        return
    spec, definition = found
    from engine.runtime import clocked

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
    announce_jobs(session)


def cancel(session: Session, dep: Deployment, now: datetime) -> None:
    session.execute(update(Job).where(Job.kind == "timer_start", Job.deployment_id == dep.id,
                                      Job.state == JobState.PENDING)
                    .values(state=JobState.CANCELLED, updated_at=now))


def _fire_start_event(workflow: Any) -> None:
    """Let the waiting timer start event through: the job's due time is the event."""
    for task in workflow.get_tasks(state=SpiffState.WAITING):
        if isinstance(task.task_spec, StartEvent):
            task.internal_data = {"event_fired": True}
            if not task.children:  # cycle timers create their outputs only as they fire
                for output in task.task_spec.outputs:
                    child = task._add_child(output, SpiffState.FUTURE)
                    child.task_spec._predict(child, mask=SpiffState.NOT_FINISHED_MASK)
            task.task_spec._update(task)


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
            _fire_start_event(workflow)

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
