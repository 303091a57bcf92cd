"""Admin actions on an instance: suspend, resume, terminate. Each needs a reason and is audited."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from engine import audit, integrity
from engine.errors import ValidationFailed
from engine.states import InstanceStatus, JobState, TaskState, check_transition
from engine.store.models import HumanTask, Job, MessageSubscription, ProcessInstance

if TYPE_CHECKING:
    from engine.request_context import RequestContext
    from engine.runtime.instances import InstanceRuntime


AUDIT_ACTIONS = {"suspend": "instance.suspended", "resume": "instance.resumed",
                 "terminate": "instance.terminated"}


def _require_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise ValidationFailed("This action needs a reason.", errors={"reason": "required"},
                               code="reason_required")
    return reason.strip()


def _resumed_status(runtime: InstanceRuntime, session: object, row: ProcessInstance) -> InstanceStatus:
    due = session.scalar(select(Job.id).where(Job.instance_id == row.id, Job.state == JobState.PENDING,  # type: ignore[attr-defined]
                                              Job.due_at <= runtime.clock.now()).limit(1))
    return InstanceStatus.RUNNING if due is not None else InstanceStatus.WAITING


def change_status(runtime: InstanceRuntime, context: RequestContext, instance_id: int, action: str
                  ) -> ProcessInstance:
    """``action`` is suspend, resume or terminate, by ``context.actor`` for ``context.reason`` (required), at
    ``context.at``."""
    reason, actor, now = _require_reason(context.reason), context.actor, context.at
    with runtime.db.unit_of_work(context.correlation_id) as session:
        row = runtime.get_row(session, instance_id, lock=True)
        before = row.status
        if action == "suspend":
            target = InstanceStatus.SUSPENDED
        elif action == "resume":
            if row.status != InstanceStatus.SUSPENDED:
                check_transition(row.status, InstanceStatus.SUSPENDED, "instance")  # raises: not suspended
            target = _resumed_status(runtime, session, row)
        else:
            target = InstanceStatus.TERMINATED
        check_transition(row.status, target, "instance")
        row.status, row.status_reason, row.updated_at = target, reason, now
        key = integrity.key_of(session)
        integrity.seal_instance(key, row)
        if target == InstanceStatus.TERMINATED:
            row.ended_at = now
            for task in session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id,
                                                                HumanTask.state.in_([TaskState.OPEN,
                                                                                     TaskState.CLAIMED]))):
                task.state = TaskState.CANCELLED
                integrity.seal_task(key, task)
            session.execute(update(Job).where(Job.instance_id == row.id, Job.state.in_(
                [JobState.PENDING, JobState.RUNNING])).values(state=JobState.CANCELLED, updated_at=now))
            for sub in session.scalars(select(MessageSubscription)
                                       .where(MessageSubscription.instance_id == row.id)):
                session.delete(sub)
        audit.record(session, actor, AUDIT_ACTIONS[action],
                     "instance", row.id, runtime.label(row), at=now, before={"status": before},
                     after={"status": target}, reason=reason)
    runtime.forget(instance_id)
    return row
