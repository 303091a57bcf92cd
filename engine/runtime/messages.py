"""Message correlation: by name and correlation keys, to a waiting instance or a message start event.

An unmatched message is kept until its time to live ends, delivered to an instance that starts
waiting for it meanwhile, and otherwise expires visibly (status ``expired`` and an audit event).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.authority import Gate, NotPermitted, check_send, correlation_fields, message_gates
from engine.errors import Conflict, ValidationFailed
from engine.identity import Principal
from engine.runtime import event_subprocesses
from engine.runtime.sync import matches
from engine.spiff import events
from engine.spiff.tasks import waiting_tasks
from engine.states import DeploymentStatus, MessageStatus
from engine.store.models import Deployment, Message, MessageSubscription, User

if TYPE_CHECKING:
    from engine.request_context import RequestContext
    from engine.runtime.instances import InstanceRuntime, Live

DEFAULT_TTL_SECONDS = 3600


def deliver(workflow: Any, name: str, payload: dict[str, Any]) -> None:
    workflow.send_event(events.message(name, payload))


def check_correlation_keys(correlation_keys: dict[str, Any]) -> None:
    """A key's value is matched against an instance's business key or a scalar variable: a list, an object
    or null could never match, so the message would wait for nothing until its time to live ends."""
    unmatchable = {k: "a correlation key's value is a text, a number or a boolean"
                   for k, v in correlation_keys.items() if v is None or isinstance(v, (list, dict))}
    unmatchable |= {k: "a correlation key needs a name" for k in correlation_keys if not str(k).strip()}
    if unmatchable:
        raise ValidationFailed("The message's correlation keys can never match an instance; nothing was "
                               "stored.", errors=unmatchable, code="message_invalid")


def check_carried(parsed: Any, name: str, payload: dict[str, Any]) -> None:
    """The payload carries every field the model's correlation properties read from the message: without
    one, catching it would fail on the retrieval expression (refused before anything runs)."""
    missing = sorted(correlation_fields(parsed, name) - set(payload))
    if missing:
        raise ValidationFailed(f"The message '{name}' must carry {', '.join(missing)}: the model's "
                               "correlation properties read it from the payload; nothing was stored.",
                               errors={field: "required by a correlation property" for field in missing},
                               code="message_invalid")


def carried_keys(session: Session, runtime: InstanceRuntime, name: str, payload: dict[str, Any]
                 ) -> dict[str, Any]:
    """The payload's values of the fields the active models' correlation properties read from message
    ``name``: the message belongs to an instance whose variable of that name agrees (BPMN correlation)."""
    active = session.scalars(select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE))
    fields = {f for dep in active for f in correlation_fields(runtime.specs.get(dep), name)}
    return {f: payload[f] for f in sorted(fields) if f in payload}


def agrees(carried: dict[str, Any], correlation: dict[str, Any]) -> bool:
    """Where the waiting instance holds a variable a correlation property reads, the message's value is the
    same; one it does not hold yet (the first message of a conversation sets it) does not stop it."""
    return all(str(correlation[k]) == str(v) for k, v in carried.items() if k in correlation)


def message_start_deployments(session: Session, runtime: InstanceRuntime, name: str) -> list[Deployment]:
    """Active deployments whose process starts on message ``name`` (latest version of each key)."""
    found: dict[str, Deployment] = {}
    for dep in session.scalars(select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE)
                               .order_by(Deployment.version)):
        parsed = runtime.specs.get(dep)
        if any(events.message_start_name(spec) == name for spec in parsed.spec.task_specs.values()):
            found[dep.key] = dep
    return list(found.values())


def check_waiting(live: Live, sender: Principal, name: str, payload: dict[str, Any]) -> None:
    """``check_send`` for a message delivered into ``live``: it reaches every event waiting for it, so each
    must let the sender in (any of those that catch it, should none be found waiting)."""
    waiting = waiting_gates(live, name)
    if waiting:
        check_send(waiting, sender, name, payload, every=True)
    else:
        check_send([g for g in message_gates(live.parsed, name).values() if not g.starts], sender, name,
                   payload)


def waiting_gates(live: Live, name: str) -> list[Gate]:
    """The gates of the events of ``live`` that wait for message ``name`` now."""
    gates = message_gates(live.parsed, name)
    # an event-based gateway waits for the events after it
    waiting_ids = {i for t in waiting_tasks(live.workflow)
                   for i in (t.task_spec.bpmn_id, *(getattr(o, "bpmn_id", None) for o in t.task_spec.outputs))
                   if events.is_event_based_gateway(t.task_spec) or i == t.task_spec.bpmn_id}
    waiting_ids |= set(event_subprocesses.message_starts(live.workflow))  # they wait as long as the process
    return [gate for element, gate in gates.items() if element in waiting_ids]


def catching_gates(session: Session, runtime: InstanceRuntime, name: str) -> list[Gate]:
    """Every active deployment's intermediate, boundary and receive events for message ``name``."""
    active = session.scalars(select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE))
    return [g for dep in active for g in message_gates(runtime.specs.get(dep), name).values() if not g.starts]


def correlate(runtime: InstanceRuntime, context: RequestContext, name: str,
              correlation_keys: dict[str, Any], payload: dict[str, Any],
              ttl_seconds: int | None = None) -> dict[str, Any]:
    """Deliver a message for ``context``'s request (its principal: a client; none: the engine itself),
    audited at its time (a kept message's expiry counts from the engine's clock); returns
    ``{status, instance_id?, message_id?}``.

    The target is found first (a waiting instance, else a message start event), then a ``Principal`` is
    checked against that event's senders and declared fields (``engine.authority.check_send``). A message
    that reaches nothing is kept only from a sender some active process's catching event allows, so that
    keeping it cannot plant a payload no model asked for.
    """
    if not name:
        raise ValidationFailed("A message needs a name.", errors={"name": "required"}, code="message_invalid")
    check_correlation_keys(correlation_keys)
    client, actor, now = context.principal, context.actor, context.at
    with runtime.db.read() as session:
        subscriptions = session.scalars(select(MessageSubscription).where(MessageSubscription.name == name)
                                        .order_by(MessageSubscription.id)).all()
        carried = carried_keys(session, runtime, name, payload)
        matching = list(dict.fromkeys(s.instance_id for s in subscriptions
                                      if matches(correlation_keys, s.correlation)
                                      and agrees(carried, s.correlation)))
    if client is not None and len(matching) > 1:
        # as Camunda's correlate: a client's message reaches one instance, never an arbitrary one of several
        raise Conflict(f"The message '{name}' matches {len(matching)} waiting instances; give correlation "
                       "keys that name one (e.g. its business_key). Nothing was delivered.",
                       code="message_ambiguous")
    target = matching[0] if matching else None
    if target is not None:
        with runtime.step(target, actor, at=now, correlation_id=context.correlation_id) as (uow, live):
            if client is not None:
                check_waiting(live, client, name, payload)
            check_carried(live.parsed, name, payload)
            deliver(live.workflow, name, payload)
            audit.record(uow, actor, "message.correlated", "instance", target, runtime.label(live.row),
                         at=now,
                         after={"message": name, "correlation_keys": correlation_keys, "payload": payload})
        return {"status": MessageStatus.MATCHED, "instance_id": target}
    with runtime.db.transaction(context.correlation_id) as uow:
        session = uow.session
        starts = message_start_deployments(session, runtime, name)
        if starts:
            dep = starts[0]
            if client is not None:
                check_send([g for g in message_gates(runtime.specs.get(dep), name).values() if g.starts],
                           client, name, payload)
            check_carried(runtime.specs.get(dep), name, payload)
            business_key = correlation_keys.get("business_key")
            live = runtime.create(uow, dep, business_key, {}, actor,
                                  prepare=lambda wf: _start_by_message(runtime, wf, name, payload), at=now)
            audit.record(session, actor, "message.started_instance", "instance", live.row.id,
                         runtime.label(live.row), at=now, after={"message": name, "payload": payload})
            instance_id = live.row.id
        else:
            if client is not None:
                check_send(catching_gates(session, runtime, name), client, name, payload)
            ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else int(ttl_seconds)
            message = Message(name=name, correlation_keys=audit.normalized(correlation_keys),
                              payload=audit.normalized(payload), status=MessageStatus.PENDING,
                              received_at=now, expires_at=runtime.clock.now() + timedelta(seconds=ttl),
                              sender=actor.id)
            session.add(message)
            session.flush()
            audit.record(session, actor, "message.stored", "message", message.id, name, at=now,
                         after={"correlation_keys": correlation_keys, "expires_at": message.expires_at})
            return {"status": MessageStatus.PENDING, "message_id": message.id}
    runtime.remember_created(uow)
    return {"status": MessageStatus.MATCHED, "instance_id": instance_id}


def _start_by_message(runtime: InstanceRuntime, workflow: Any, name: str, payload: dict[str, Any]) -> None:
    runtime.run_engine(workflow)
    deliver(workflow, name, payload)


def expire_messages(runtime: InstanceRuntime) -> int:
    """Mark pending messages past their time to live as expired (visible, audited)."""
    now = runtime.clock.now()
    with runtime.db.unit_of_work() as session:
        expired = session.scalars(select(Message).where(Message.status == MessageStatus.PENDING,
                                                        Message.expires_at <= now)).all()
        for message in expired:
            message.status = MessageStatus.EXPIRED
            audit.record(session, Actor.system(), "message.expired", "message", message.id, message.name,
                         at=now, before={"status": MessageStatus.PENDING},
                         after={"status": MessageStatus.EXPIRED})
    return len(expired)


def deliver_stored(runtime: InstanceRuntime, message_id: int, instance_id: int) -> None:
    """Deliver a kept message to an instance that started waiting for it (run as a job).

    A message a person sent was kept because some process's event lets them in; the event now waiting
    for it must let them in too and declare its payload, as if it were sent now (``check_send``, with the
    sender's roles of today). A refused delivery changes nothing, the message stays pending for another
    instance, and the refusal is in the audit trail. A sender without an account is the engine."""
    now = runtime.clock.now()
    try:
        with runtime.step(instance_id, Actor.system()) as (uow, live):
            session = uow.session
            message = session.get(Message, message_id)
            if message is None or message.status != MessageStatus.PENDING:
                return
            person = session.scalar(select(User).where(User.username == message.sender))
            if person is not None:  # not kept by the engine itself
                check_waiting(live, Principal.of(person), message.name, message.payload)
            check_carried(live.parsed, message.name, message.payload)
            deliver(live.workflow, message.name, message.payload)
            message.status, message.matched_instance_id = MessageStatus.MATCHED, instance_id
            audit.record(session, Actor.system(), "message.correlated", "instance", instance_id,
                         runtime.label(live.row), at=now,
                         after={"message": message.name, "message_id": message.id})
    except (NotPermitted, ValidationFailed) as refused:  # UndeclaredField and message_invalid included
        with runtime.db.transaction() as uow:
            audit.record(uow, Actor.system(), "message.delivery_refused", "message", message_id,
                         str(message_id), at=now, after={"instance_id": instance_id}, reason=refused.message)

