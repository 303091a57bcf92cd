"""Jobs: service-task calls, timers and message deliveries, run by workers outside any transaction.

A worker claims due jobs in its own short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) with a
lease; it makes the outside call with no transaction open, then completes the task in a new one. A
job whose lease ran out (its worker died) is claimed again. A failing job is retried with backoff;
after the last attempt it becomes an incident that an admin can retry.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select

from engine import audit, failpoints, integrity
from engine.audit import Actor
from engine.errors import Conflict, ConnectorError, GmpflowError, NotFound, ValidationFailed
from engine.operations import CallContext, OperationRegistry
from engine.request_context import RequestContext
from engine.runtime import messages, rows, timer_starts
from engine.runtime.rows import ClaimedJob
from engine.spiff.events import bpmn_error
from engine.spiff.state import SERVICE_RESULT
from engine.states import InstanceStatus, JobState
from engine.store.db import UnitOfWork
from engine.store.dbapi import dbapi
from engine.store.models import Incident, Job

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime

log = logging.getLogger("gmpflow.jobs")
SWEEP_INTERVAL = timedelta(seconds=10)  # how often unmatched messages past their time to live expire
# Jobs one claim takes, run one after the other: few, so that several workers share a burst evenly (with 20,
# four workers on 200 slow jobs ended with one still holding a batch while the others idled) and a job does
# not wait under a lease behind a long queue of its worker's
CLAIM_BATCH = 4


class _NotCaught(Exception):
    """No boundary error event caught a business error; the step rolls back."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRunner:
    def __init__(self, runtime: InstanceRuntime, registry: OperationRegistry, lease: timedelta,
                 owner: str | None = None) -> None:
        """``lease``: how long a claimed job stays locked to its worker (``Config.job_lease``: longer than
        any connector call may take, since a job whose lease ran out is claimed again while it may still be
        running; short leases only in tests that kill workers)."""
        self.runtime, self.registry = runtime, registry
        self.owner = owner or worker_id()
        self.lease = lease
        self._next_sweep: datetime | None = None

    @property
    def clock(self) -> Any:
        return self.runtime.clock

    def claim(self, limit: int = CLAIM_BATCH) -> list[ClaimedJob]:
        """Due jobs, locked to this worker for its lease; an idle poll only reads."""
        now = self.clock.now()
        with self.runtime.db.query() as db:
            if not rows.any_due(db, now):
                return []
        with self.runtime.db.transaction() as uow:
            return rows.claim_due(uow.db, self.owner, now, now + self.lease, limit)

    def next_due(self) -> datetime | None:
        """When the next job falls due (``None``: no job waits); a worker sleeps until then."""
        with self.runtime.db.query() as db:
            return rows.next_due(db)

    def run_once(self, limit: int = CLAIM_BATCH) -> int:
        """Run every job due now (and what they make due now); returns how many ran. Tests drive this."""
        ran = 0
        now = self.clock.now()
        if self._next_sweep is None or now >= self._next_sweep:  # one sweep per interval, not per call
            messages.expire_messages(self.runtime)
            self._next_sweep = now + SWEEP_INTERVAL
        while True:
            jobs = self.claim(limit)
            if not jobs:
                return ran
            for job in jobs:
                self.execute(job)
                ran += 1

    def execute(self, job: ClaimedJob) -> None:
        try:
            if job.kind == "service":
                self._run_service(job)
            elif job.kind == "timer":
                self._run_timer(job)
            elif job.kind == "message":
                self._run_message(job)
            elif job.kind == "timer_start":
                timer_starts.fire(self.runtime, job.id, self.owner)
            else:
                raise GmpflowError(f"unknown job kind {job.kind}")
        except Conflict as exc:
            if exc.code == "instance_suspended":
                self._postpone(job)
            else:
                self._fail(job, exc)
        except Exception as exc:  # the top of the worker loop: every error is recorded, none is lost
            log.exception("job %s (%s) failed", job.id, job.kind)
            self._fail(job, exc)

    # -- kinds --------------------------------------------------------------------------------------------
    def _run_service(self, job: ClaimedJob) -> None:
        assert job.instance_id is not None and job.task_guid is not None and job.operation is not None
        operation = self.registry.get(job.operation)
        params = job.payload.get("params", {})
        operation.validate_params(params)
        failpoints.hit("job.before_call")
        try:
            # no transaction
            result = operation.call(params, CallContext(job.task_guid, job.instance_id, job.attempts))
        except ConnectorError as exc:
            if exc.bpmn_error_code and self._throw_bpmn_error(job, exc):
                return
            raise
        failpoints.hit("job.after_call")
        with self.runtime.step(job.instance_id, Actor.system()) as (uow, live):
            if not self._finish(uow, job, "job.completed", {"operation": job.operation, "result": result}):
                return
            failpoints.before_commit(uow, "job.before_commit")
            task = live.workflow.get_task_from_id(UUID(job.task_guid))
            task.internal_data[SERVICE_RESULT] = audit.normalized(result)
            task.run()
            live.handled.add(job.task_guid)

    def _throw_bpmn_error(self, job: ClaimedJob, exc: ConnectorError) -> bool:
        """Throw a counterpart's business error at the service task; False when no boundary event catches it
        (then the error becomes an incident like any other failure)."""
        assert job.instance_id is not None and job.task_guid is not None
        code = str(exc.bpmn_error_code)
        try:
            with self.runtime.step(job.instance_id, Actor.system()) as (uow, live):
                if not self._finish(uow, job, "job.bpmn_error", {"operation": job.operation,
                                                                      "error_code": code,
                                                                      "message": exc.message}):
                    return True
                task = live.workflow.get_task_from_id(UUID(job.task_guid))
                error = bpmn_error(code, {"error_code": code, "message": exc.message}, task.workflow)
                lineage, workflow = [], task.workflow  # the task's (sub)process and those around it
                while workflow is not None:
                    lineage.append(workflow)
                    workflow = workflow.parent_workflow
                waiting = live.workflow.event_manager.tasks.values()
                if not any(t.workflow in lineage and t.task_spec.event_definition.catches(t, error)
                           for t in waiting):
                    raise _NotCaught
                live.workflow.catch(error)  # SpiffWorkflow looks outward from the target
                live.handled.add(job.task_guid)
        except _NotCaught:
            return False
        return True

    def _run_timer(self, job: ClaimedJob) -> None:
        assert job.instance_id is not None
        with self.runtime.step(job.instance_id, Actor.system()) as (uow, live):
            if self._finish(uow, job, "timer.fired", {"element_id": job.element_id}):
                live.handled.add(job.task_guid or "")

    def _run_message(self, job: ClaimedJob) -> None:
        if "message_id" in job.payload:
            assert job.instance_id is not None
            messages.deliver_stored(self.runtime, job.payload["message_id"], job.instance_id)
        else:
            messages.correlate(self.runtime, RequestContext.engines_own(self.clock.now()),
                               job.payload["name"],
                               job.payload.get("correlation_keys", {}), job.payload.get("payload", {}))
        with self.runtime.db.transaction() as uow:
            self._finish(uow, job, None, None)

    # -- bookkeeping ----------------------------------------------------------------------------------------
    def _finish(self, uow: UnitOfWork, job: ClaimedJob, action: str | None,
                after: dict[str, Any] | None) -> bool:
        """Mark the job done (with its audit event) while this worker still holds it; False, changing
        nothing, when its lease ran out and another worker took it."""
        now = self.clock.now()
        if not rows.finish_job(uow.db, job.id, self.owner, now):
            return False
        if action:
            audit.record(uow, Actor.system(), action, "job", job.id, f"{job.kind} {job.element_id or ''}",
                         at=now, after=after)
        return True

    def _postpone(self, job: ClaimedJob) -> None:
        with self.runtime.db.unit_of_work() as session:
            row = _job(session, job.id)
            row.state, row.locked_by, row.lock_expires_at = JobState.PENDING, None, None
            row.attempts -= 1
            row.due_at = self.clock.now() + timedelta(minutes=1)

    def _wait_for_retry(self, session: Any, instance_id: int, now: datetime) -> None:
        """An instance whose only engine work is a retry later waits (``waiting``), like one on a timer."""
        instance = self.runtime.get_row(session, instance_id, lock=True)
        if instance.status == InstanceStatus.RUNNING and not rows.job_due(dbapi(session), instance_id, now):
            instance.status = InstanceStatus.WAITING
            integrity.seal_instance(integrity.key_of(session), instance)

    def _fail(self, job: ClaimedJob, exc: Exception) -> None:
        now = self.clock.now()
        message = exc.message if isinstance(exc, GmpflowError) else f"{type(exc).__name__}: {exc}"
        retryable = not isinstance(exc, (ValidationFailed, NotFound)) and getattr(exc, "retryable", True)
        with self.runtime.db.unit_of_work() as session:
            row = _job(session, job.id)
            row.last_error, row.updated_at, row.locked_by, row.lock_expires_at = message, now, None, None
            if retryable and row.attempts < row.max_attempts:
                backoff = float(row.payload.get("backoff", 1.0)) * (2 ** (row.attempts - 1))
                row.state, row.due_at = JobState.PENDING, now + timedelta(seconds=backoff)
                audit.record(session, Actor.system(), "job.retry_scheduled", "job", job.id,
                             f"{job.kind} {job.element_id or ''}", at=now,
                             after={"attempts": row.attempts, "error": message, "due_at": row.due_at})
                session.flush()
                if row.instance_id is not None:
                    self._wait_for_retry(session, row.instance_id, now)
                return
            row.state = JobState.FAILED
            incident = Incident(job_id=row.id, instance_id=row.instance_id, element_id=row.element_id,
                                error=message,
                                attempts=row.attempts, created_at=now)
            session.add(incident)
            session.flush()
            audit.record(session, Actor.system(), "incident.opened", "incident", incident.id,
                         f"{job.kind} {job.element_id or ''}", at=now,
                         after={"job_id": row.id, "instance_id": row.instance_id, "error": message,
                                "attempts": row.attempts})
            if row.instance_id is not None:
                instance = self.runtime.get_row(session, row.instance_id, lock=True)
                if instance.status in (InstanceStatus.RUNNING, InstanceStatus.WAITING):
                    audit.record(session, Actor.system(), "instance.failed", "instance", instance.id,
                                 self.runtime.label(instance), at=now, before={"status": instance.status},
                                 after={"status": InstanceStatus.FAILED})
                    instance.status = InstanceStatus.FAILED
                    integrity.seal_instance(integrity.key_of(session), instance)


def _job(session: Any, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id}.", code="job_not_found")
    return job


def retry_incident(runtime: InstanceRuntime, context: RequestContext, incident_id: int) -> Incident:
    """An admin retries the failed job of an incident (the request's reason is required). The incident is
    resolved and audited at the request's time; the job is due again at the engine's clock's now."""
    reason = context.reason
    if not reason or not reason.strip():
        raise ValidationFailed("A retry needs a reason.", errors={"reason": "required"},
                               code="reason_required")
    actor, at, now = context.actor, context.at, runtime.clock.now()
    with runtime.db.unit_of_work(context.correlation_id) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {incident_id}.", code="incident_not_found")
        if incident.resolved_at is not None:
            raise Conflict(f"Incident {incident_id} is already resolved.", code="incident_resolved")
        job = _job(session, incident.job_id)
        job.state, job.due_at, job.updated_at = JobState.PENDING, now, now
        job.max_attempts = job.attempts + 1
        rows.announce_jobs(dbapi(session))
        incident.resolved_at, incident.resolved_by, incident.resolution_reason = at, actor.id, reason
        audit.record(session, actor, "incident.retried", "incident", incident.id, incident.element_id or "",
                     at=at, reason=reason, before={"resolved": False},
                     after={"resolved": True, "job_id": job.id})
        if incident.instance_id is not None:
            instance = runtime.get_row(session, incident.instance_id, lock=True)
            if instance.status == InstanceStatus.FAILED:
                open_incidents = session.scalar(select(Incident.id).where(
                    Incident.instance_id == instance.id, Incident.resolved_at.is_(None),
                    Incident.id != incident.id))
                if open_incidents is None:
                    instance.status = InstanceStatus.RUNNING
                    integrity.seal_instance(integrity.key_of(session), instance)
    return incident
