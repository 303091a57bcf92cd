"""Derive the stored indexes of an instance from its workflow after each step.

The workflow state is the truth; the human-task index, the jobs and the message subscriptions are
kept in step with it here, in the same transaction, so inbox and worker queries never read the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from engine import audit
from engine.audit import Actor
from engine.definitions.interchange import assignee_of
from engine.definitions.properties import task_properties
from engine.runtime import event_subprocesses, rows
from engine.runtime.variables import variables_of
from engine.spiff.events import after_duration, is_message, is_timer, timer_datetime
from engine.spiff.state import DeferredServiceTask
from engine.spiff.tasks import ready_tasks
from engine.states import JobState, MessageStatus, TaskState
from engine.store.db import UnitOfWork
from engine.store.models import Message, MessageSubscription

if TYPE_CHECKING:
    from engine.runtime.instances import Live

SCALAR = (str, int, float, bool)


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
    return timer_datetime(value) + timedelta(microseconds=1)


def _lane_roles(task_spec: Any) -> list[str]:
    return [task_spec.lane] if getattr(task_spec, "lane", None) else []


def _assignee(db: Any, task_spec: Any) -> str | None:
    """The user the model assigns the task to (``camunda:assignee``) when that user is active and holds the
    task's role; otherwise None: the task opens unclaimed, for its role (the lint's notice said so)."""
    username = assignee_of(task_spec)
    if username is None:
        return None
    roles = _lane_roles(task_spec)
    found = db.all("SELECT r.role_name FROM app_user u LEFT JOIN user_role r ON r.user_id = u.id "
                   "WHERE u.username = :username AND u.active = :active",
                   {"username": username, "active": True})
    held = {row[0] for row in found}
    return username if found and (not roles or held & set(roles)) else None


def _candidate_roles(task: Any, expression: str | None, script_engine: Any) -> list[str]:
    """The roles that may work on the task: its ``candidateRoles`` expression's value (a role name or a list
    of them, e.g. the owner role of the master-data type a change request is about), else its lane's."""
    if expression:
        value = script_engine.evaluate(task, expression)
        roles = [value] if isinstance(value, str) else list(value or [])
        if roles and all(isinstance(r, str) and r for r in roles):
            return roles
    return _lane_roles(task.task_spec)


def _due_at(task: Any, now: datetime, script_engine: Any) -> datetime | None:
    due = task_properties(task.task_spec).due
    if not due:
        return None
    return after_duration(str(script_engine.evaluate(task, due)), now)


@dataclass
class Derived:
    """What the stored indexes hold for one workflow state: the keys the sync compares."""

    human: dict[str, Any] = field(default_factory=dict)      # task guid -> ready user/manual task
    service: dict[str, Any] = field(default_factory=dict)    # task guid -> ready service task
    timers: dict[str, tuple[Any, datetime]] = field(default_factory=dict)  # task guid -> (task, due)
    messages: set[str] = field(default_factory=set)          # awaited message names


def derive(workflow: Any) -> Derived:
    derived = Derived()
    for task in ready_tasks(workflow):
        spec = task.task_spec
        if isinstance(spec, DeferredServiceTask):
            derived.service[str(task.id)] = task
        elif spec.manual:
            derived.human[str(task.id)] = task
    for task, definition, pending in waiting_events(workflow):
        if is_timer(definition):
            due = timer_due(pending.value)
            if due is not None:
                derived.timers[str(task.id)] = (task, due)
        elif is_message(definition):
            derived.messages.add(pending.name)
    derived.messages |= set(event_subprocesses.message_starts(workflow).values())
    return derived


def _cancel_tasks(uow: UnitOfWork, live: Live, actor: Actor, now: datetime, guids: set[str]) -> None:
    label = f"{live.row.process_key} #{live.row.id}"
    for task_id, name in rows.cancel_tasks(uow.db, live.row.id, sorted(guids), uow.audit_key):
        audit.record(uow, actor, "task.cancelled", "task", task_id, f"{name} ({label})", at=now,
                     before={"state": TaskState.OPEN}, after={"state": TaskState.CANCELLED})


def _insert_tasks(uow: UnitOfWork, live: Live, actor: Actor, now: datetime, script_engine: Any,
                  tasks: list[Any]) -> None:
    label = f"{live.row.process_key} #{live.row.id}"
    db = uow.db
    for task in tasks:
        spec = task.task_spec
        props = task_properties(spec)
        values = dict(instance_id=live.row.id, task_guid=str(task.id), element_id=spec.bpmn_id,
                      name=spec.bpmn_name or spec.bpmn_id, lane=getattr(spec, "lane", None),
                      candidate_roles=_candidate_roles(task, props.candidate_roles, script_engine),
                      form_id=props.form_id,
                      instructions=props.instructions,
                      signature_meaning=props.signature_meaning,
                      signature_distinct_from=",".join(props.distinct_from) or None,
                      due_at=_due_at(task, now, script_engine), state=TaskState.OPEN, created_at=now)
        assignee = _assignee(db, spec)
        if assignee is not None:
            values.update(state=TaskState.CLAIMED, assignee=assignee)
        task_id = rows.insert_task(db, values, uow.audit_key)
        audit.record(uow, actor, "task.created", "task", task_id, f"{values['name']} ({label})", at=now,
                     after={"element_id": values["element_id"], "lane": values["lane"],
                            "state": values["state"], **({"assignee": assignee} if assignee else {})})


def _cancel_jobs(uow: UnitOfWork, live: Live, now: datetime, kind: str, guids: set[str]) -> None:
    rows.cancel_jobs(uow.db, live.row.id, kind, sorted(guids), now)


def _job_row(live: Live, now: datetime, kind: str, due: datetime, task: Any = None,
             payload: dict | None = None,
             max_attempts: int = 3) -> dict[str, Any]:
    spec = task.task_spec if task is not None else None
    return dict(kind=kind, instance_id=live.row.id, deployment_id=live.row.deployment_id,
                task_guid=str(task.id) if task is not None else None,
                element_id=getattr(spec, "bpmn_id", None), operation=getattr(spec, "operation_name", None),
                payload=payload or {}, state=JobState.PENDING, due_at=due, attempts=0,
                max_attempts=max_attempts,
                created_at=now, updated_at=now)


def _service_job(live: Live, now: datetime, task: Any) -> dict[str, Any]:
    spec = task.task_spec
    params = {name: value["value"] for name, value in spec.evaluate_params(task).items()}
    retries = int(spec.retries) if spec.retries not in (None, "") else 2
    return _job_row(live, now, "service", now, task, {"params": audit.normalized(params),
                                                       "backoff": float(spec.retry_backoff_base or 1.0)},
                    max_attempts=retries + 1)


def correlation_snapshot(live: Live) -> dict[str, Any]:
    """What a waiting instance can be correlated on: its business key and its scalar variables."""
    values = {k: v for k, v in variables_of(live.workflow).items() if isinstance(v, SCALAR)}
    if live.row.business_key is not None:
        values["business_key"] = live.row.business_key
    return values


def _sync_subscriptions(uow: UnitOfWork, live: Live, now: datetime, old: set[str], new: set[str]) -> None:
    """One subscription per awaited message name, carrying the values it can be correlated on."""
    session = uow.session
    if old - new:
        session.execute(delete(MessageSubscription).where(MessageSubscription.instance_id == live.row.id,
                                                          MessageSubscription.name.in_(old - new)))
    if not new:
        return
    snapshot = audit.normalized(correlation_snapshot(live))
    if old & new and snapshot != live.correlation:
        session.execute(update(MessageSubscription).where(MessageSubscription.instance_id == live.row.id)
                        .values(correlation=snapshot))
    live.correlation = snapshot
    for name in sorted(new - old):
        session.add(MessageSubscription(instance_id=live.row.id, name=name, correlation=snapshot,
                                        created_at=now))
        waiting = session.scalars(select(Message).where(Message.name == name,
                                                        Message.status == MessageStatus.PENDING,
                                                        Message.expires_at > now).order_by(Message.id))
        for message in waiting:
            if matches(message.correlation_keys, snapshot):
                _add_job(uow, "message", live, now, {"message_id": message.id})
                break


def matches(keys: dict[str, Any], correlation: dict[str, Any]) -> bool:
    """A message matches a subscription when every correlation key it carries has the same value."""
    return all(k in correlation and str(correlation[k]) == str(v) for k, v in keys.items())


def _add_job(uow: UnitOfWork, kind: str, live: Live, now: datetime, payload: dict[str, Any]) -> None:
    rows.insert_jobs(uow.db, [_job_row(live, now, kind, now, payload=audit.normalized(payload))])
    uow.info["message_job_added"] = True


def flat_correlations(correlations: dict[str, Any] | None) -> dict[str, Any]:
    """SpiffWorkflow groups a thrown message's correlation properties by correlation key
    (``{key: {property: value}}``); the engine correlates on property names and values."""
    flat: dict[str, Any] = {}
    for key, value in (correlations or {}).items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def route_thrown_messages(uow: UnitOfWork, live: Live, now: datetime) -> bool:
    """Messages a process throws are delivered by a job after this step commits."""
    thrown = False
    for event in live.workflow.get_events():
        if is_message(event.event_definition):
            payload = event.payload if isinstance(event.payload, dict) else {"value": event.payload}
            _add_job(uow, "message", live, now,
                     {"name": event.event_definition.name, "payload": payload,
                      "correlation_keys": flat_correlations(event.correlations)})
            thrown = True
    return thrown


def sync_instance(uow: UnitOfWork, live: Live, actor: Actor, now: datetime, script_engine: Any,
                  handled: frozenset[str] = frozenset(), *, at: datetime | None = None) -> bool:
    """Bring the stored indexes from ``live.indexed`` to the workflow's state, writing only differences.

    ``handled`` are task guids whose row the caller already settled (the completed task, the job that ran).
    ``at`` is the time of the request that made this step (default ``now``): the human tasks it creates or
    cancels, and their audit events, carry it; jobs, timers and subscriptions keep the engine's ``now``
    (they schedule the engine's own work, compared with its clock).
    Returns whether engine work is due now (a service call, a due timer, a message delivery).
    """
    at = at or now
    old, new = live.indexed, derive(live.workflow)
    due_now = route_thrown_messages(uow, live, now)
    gone = set(old.human) - set(new.human) - handled
    if gone:
        _cancel_tasks(uow, live, actor, at, gone)
    added = [task for guid, task in new.human.items() if guid not in old.human]
    if added:
        _insert_tasks(uow, live, actor, at, script_engine, added)
    gone = set(old.service) - set(new.service) - handled
    if gone:
        _cancel_jobs(uow, live, now, "service", gone)
    jobs = [_service_job(live, now, task) for guid, task in new.service.items() if guid not in old.service]
    changed_timers = {guid for guid, (task, due) in new.timers.items()
                      if guid not in old.timers or old.timers[guid][1] != due}
    gone = (set(old.timers) - set(new.timers) - handled) | (changed_timers & set(old.timers))
    if gone:
        _cancel_jobs(uow, live, now, "timer", gone)
    jobs += [_job_row(live, now, "timer", new.timers[guid][1], new.timers[guid][0])
             for guid in sorted(changed_timers)]
    if jobs:
        rows.insert_jobs(uow.db, jobs)
    if old.messages or new.messages:
        _sync_subscriptions(uow, live, now, old.messages, new.messages)
    live.indexed = new
    # a service task whose call was made due before this step may wait for a retry (backoff): ask its job
    waiting_service = set(new.service) - {job["task_guid"] for job in jobs}
    return (due_now or len(waiting_service) < len(new.service)
            or any(due <= now for _, due in new.timers.values())
            or bool(uow.info.pop("message_job_added", False))
            or (bool(waiting_service) and rows.job_due(uow.db, live.row.id, now)))
