"""Derive the stored indexes of an instance from its workflow after each step.

The workflow state is the truth; the human-task index, the jobs and the message subscriptions are
kept in step with it here, in the same transaction, so inbox and worker queries never read the state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.definitions.properties import task_properties
from engine.runtime.spiff import DeferredServiceTask
from engine.states import JobState, MessageStatus, TaskState
from engine.store.models import HumanTask, Job, Message, MessageSubscription

if TYPE_CHECKING:
    from engine.runtime.instances import Live

SCALAR = (str, int, float, bool)


def human_ready_tasks(workflow: Any) -> list[Any]:
    return [t for t in workflow.get_tasks(state=SpiffState.READY, manual=True)
            if not isinstance(t.task_spec, DeferredServiceTask)]


def service_ready_tasks(workflow: Any) -> list[Any]:
    return [t for t in workflow.get_tasks(state=SpiffState.READY, spec_class=DeferredServiceTask)]


def waiting_events(workflow: Any) -> list[tuple[Any, Any, Any]]:
    """(task, event definition, pending event) for every event the workflow waits on.

    A multiple event (an event-based gateway, a catch event with several triggers) counts once for
    each event it waits on: its message names need subscriptions and its timers need jobs.
    """
    found = []
    for task in workflow.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        for single in getattr(definition, "event_definitions", None) or [definition]:
            found.append((task, single, single.details(task)))
    return found


def timer_due(value: Any) -> datetime | None:
    """When the timer's job is due: just after the deadline, since SpiffWorkflow fires a timer only once
    its deadline is strictly past (a job run at the deadline itself would find the timer not yet fired)."""
    if isinstance(value, dict):
        value = value.get("next")
    if not isinstance(value, str):
        return None
    return TimerEventDefinition.get_datetime(value) + timedelta(microseconds=1)


def _lane_roles(task_spec: Any) -> list[str]:
    return [task_spec.lane] if getattr(task_spec, "lane", None) else []


def _due_at(task: Any, now: datetime, script_engine: Any) -> datetime | None:
    due = task_properties(task.task_spec).due
    if not due:
        return None
    parsed = TimerEventDefinition.parse_iso_duration(str(script_engine.evaluate(task, due)))
    return now + TimerEventDefinition.get_timedelta_from_start(parsed, now)


def sync_human_tasks(session: Session, live: Live, actor: Actor, now: datetime, script_engine: Any) -> None:
    ready = {str(t.id): t for t in human_ready_tasks(live.workflow)}
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == live.row.id,
                                                   HumanTask.state.in_([TaskState.OPEN, TaskState.CLAIMED])))
    label = f"{live.row.process_key} #{live.row.id}"
    for row in rows:
        if row.task_guid not in ready:
            row.state = TaskState.CANCELLED
            audit.record(session, actor, "task.cancelled", "task", row.id, f"{row.name} ({label})", at=now,
                         before={"state": TaskState.OPEN}, after={"state": TaskState.CANCELLED})
        else:
            del ready[row.task_guid]
    for guid, task in ready.items():
        spec = task.task_spec
        props = task_properties(spec)
        row = HumanTask(instance_id=live.row.id, task_guid=guid, element_id=spec.bpmn_id,
                        name=spec.bpmn_name or spec.bpmn_id, lane=getattr(spec, "lane", None),
                        candidate_roles=_lane_roles(spec), form_id=props.form_id, instructions=props.instructions,
                        signature_meaning=props.signature_meaning,
                        signature_distinct_from=",".join(props.distinct_from) or None,
                        due_at=_due_at(task, now, script_engine), state=TaskState.OPEN, created_at=now)
        session.add(row)
        session.flush()
        audit.record(session, actor, "task.created", "task", row.id, f"{row.name} ({label})", at=now,
                     after={"element_id": row.element_id, "lane": row.lane, "state": TaskState.OPEN})


def sync_jobs(session: Session, live: Live, actor: Actor, now: datetime, script_engine: Any) -> None:
    wanted: dict[tuple[str, str], tuple[Any, dict[str, Any], datetime]] = {}
    for task in service_ready_tasks(live.workflow):
        spec = task.task_spec
        params = {name: value["value"] for name, value in spec.evaluate_params(task).items()}
        retries = int(spec.retries) if spec.retries not in (None, "") else 2
        wanted[("service", str(task.id))] = (task, {"params": params, "max_attempts": retries + 1,
                                                    "backoff": float(spec.retry_backoff_base or 1.0)}, now)
    for task, definition, pending in waiting_events(live.workflow):
        due = timer_due(pending.value) if isinstance(definition, TimerEventDefinition) else None
        if due is not None:
            wanted[("timer", str(task.id))] = (task, {}, due)
    existing = session.scalars(select(Job).where(Job.instance_id == live.row.id,
                                                 Job.state.in_([JobState.PENDING, JobState.RUNNING]),
                                                 Job.kind.in_(["service", "timer"])))
    for job in existing:
        key = (job.kind, job.task_guid or "")
        if key in wanted and (job.kind != "timer" or job.due_at == wanted[key][2]):
            del wanted[key]
        else:
            job.state, job.updated_at = JobState.CANCELLED, now
    for (kind, guid), (task, payload, due) in wanted.items():
        max_attempts = payload.pop("max_attempts", 1)
        session.add(Job(kind=kind, instance_id=live.row.id, deployment_id=live.row.deployment_id, task_guid=guid,
                        element_id=task.task_spec.bpmn_id, operation=getattr(task.task_spec, "operation_name", None),
                        payload=payload, state=JobState.PENDING, due_at=due, attempts=0, max_attempts=max_attempts,
                        created_at=now, updated_at=now))
        if due <= now:
            session.info["jobs_due_now"] = True


def correlation_snapshot(live: Live) -> dict[str, Any]:
    """What a waiting instance can be correlated on: its business key and its scalar variables."""
    from engine.runtime.instances import variables_of

    values = {k: v for k, v in variables_of(live.workflow).items() if isinstance(v, SCALAR)}
    if live.row.business_key is not None:
        values["business_key"] = live.row.business_key
    return values


def sync_subscriptions(session: Session, live: Live, now: datetime) -> list[MessageSubscription]:
    """Keep one subscription per awaited message name; return the ones created now."""
    names = {pending.name for task, definition, pending in waiting_events(live.workflow)
             if isinstance(definition, MessageEventDefinition)}
    created = []
    existing = {s.name: s for s in session.scalars(select(MessageSubscription)
                                                   .where(MessageSubscription.instance_id == live.row.id))}
    snapshot = correlation_snapshot(live) if names else {}
    for name, sub in existing.items():
        if name not in names:
            session.delete(sub)
        elif sub.correlation != audit.normalized(snapshot):
            sub.correlation = audit.normalized(snapshot)
    for name in names - set(existing):
        sub = MessageSubscription(instance_id=live.row.id, name=name, correlation=audit.normalized(snapshot),
                                  created_at=now)
        session.add(sub)
        created.append(sub)
        waiting = session.scalars(select(Message).where(Message.name == name, Message.status == MessageStatus.PENDING,
                                                        Message.expires_at > now).order_by(Message.id))
        for message in waiting:
            if matches(message.correlation_keys, sub.correlation):
                _add_job(session, "message", live, now, {"message_id": message.id})
                break
    return created


def matches(keys: dict[str, Any], correlation: dict[str, Any]) -> bool:
    """A message matches a subscription when every correlation key it carries has the same value."""
    return all(k in correlation and str(correlation[k]) == str(v) for k, v in keys.items())


def _add_job(session: Session, kind: str, live: Live, now: datetime, payload: dict[str, Any]) -> None:
    session.add(Job(kind=kind, instance_id=live.row.id, deployment_id=live.row.deployment_id, payload=payload,
                    state=JobState.PENDING, due_at=now, attempts=0, max_attempts=3, created_at=now, updated_at=now))
    session.info["jobs_due_now"] = True


def route_thrown_messages(session: Session, live: Live, now: datetime) -> None:
    """Messages a process throws are delivered by a job after this step commits."""
    for event in live.workflow.get_events():
        if isinstance(event.event_definition, MessageEventDefinition):
            payload = event.payload if isinstance(event.payload, dict) else {"value": event.payload}
            _add_job(session, "message", live, now, {"name": event.event_definition.name, "payload": payload,
                                                     "correlation_keys": dict(event.correlations or {})})


def sync_instance(session: Session, live: Live, actor: Actor, now: datetime, script_engine: Any) -> None:
    session.info.pop("jobs_due_now", None)
    route_thrown_messages(session, live, now)
    sync_human_tasks(session, live, actor, now, script_engine)
    sync_jobs(session, live, actor, now, script_engine)
    sync_subscriptions(session, live, now)
