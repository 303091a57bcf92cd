"""Records locked by a disposition: once the model says a record is decided, nothing changes it except a
governed reopen.

The engine knows no batches. A record is named by a business key; instances whose business key is that
key or begins with ``<key>/`` (its sub-records, e.g. the steps of a batch) belong to it. Three task
properties of the model govern the lock:

- ``record.lock`` on a user task: a sandboxed expression over the task's data naming the record its
  completion locks (None or empty: none, e.g. ``batch_id if disposition in ('released', 'rejected') else
  None``). The lock is written in the completion's own transaction, so nothing can slip in between the
  decision and the lock.
- ``record.unlock`` on a user task: the same, for the record its completion opens again.
- ``record.reopen`` = ``true`` on a process's start event: instances of that process may act on a locked
  record (the governed reopen, whose approval task carries ``record.unlock``).

``check`` is the one gate: ``InstanceRuntime.step`` (every task completion, message, job and timer on an
existing instance) and ``InstanceRuntime.create`` (every start, by API, message or operation) call it
before anything changes. A locked record refuses with Conflict ``record_locked``; the unit of work rolls
back, so nothing is stored and the audit trail is unchanged. The instance that set the lock finishes its
own work (e.g. telling ERP and MES the disposition).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine import audit
from engine.audit import Actor
from engine.definitions.properties import properties_of
from engine.errors import Conflict, ValidationFailed
from engine.store.dbapi import DbApi

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime, Live
    from engine.spiff.parsing import ParsedDefinition
    from engine.store.db import UnitOfWork

LOCK, UNLOCK, REOPEN = "record.lock", "record.unlock", "record.reopen"


def record_keys(business_key: str) -> tuple[str, str]:
    """The keys a business key answers to: itself and the record it is a sub-record of (``B-1/00002`` →
    ``B-1``); a key without ``/`` answers to itself twice."""
    return business_key, business_key.split("/", 1)[0]


def active_lock(db: DbApi, business_key: str) -> tuple[int, str, int, Any, str] | None:
    """(lock id, record key, holder instance, locked at, locked by) of the lock in force over
    ``business_key``, or None. One indexed statement (only steps of instances with a business key)."""
    return db.first("SELECT id, record_key, holder_instance_id, locked_at, locked_by FROM record_lock "
                    "WHERE record_key IN (:key, :root) AND unlocked_at IS NULL ORDER BY id LIMIT 1",
                    dict(zip(("key", "root"), record_keys(business_key), strict=True)))


def may_reopen(parsed: ParsedDefinition) -> bool:
    """Whether the process declares itself a governed reopen (``record.reopen`` on a start event)."""
    return any(properties_of(spec).get(REOPEN, "").strip().lower() == "true"
               for spec in parsed.spec.task_specs.values() if spec.__class__.__name__.endswith("StartEvent"))


def check(db: DbApi, instance_id: int | None, business_key: str | None,
          parsed: Callable[[], ParsedDefinition]) -> None:
    """Raises Conflict ``record_locked`` when the record of ``business_key`` is locked and this instance
    (None: one about to start) is neither the one that locked it nor of a reopen process. ``parsed`` is
    asked only when a lock is found."""
    if not business_key:
        return
    lock = active_lock(db, business_key)
    if lock is None or lock[2] == instance_id or may_reopen(parsed()):
        return
    raise Conflict(f"The record {lock[1]} is locked since its disposition ({db.read_time(lock[3])} by "
                   f"{lock[4]}); it changes only through an approved reopen.", code="record_locked",
                   record_key=lock[1])


def _key(runtime: InstanceRuntime, expression: str, context: dict[str, Any]) -> str | None:
    try:
        value = runtime.script_engine.environment.evaluate(expression, context)
    except Exception as exc:  # the model's own expression fails: refuse the completion, say why
        raise ValidationFailed(f"The record to lock or unlock cannot be named ({exc}).",
                               errors={"record": str(exc)}, code="record_key_invalid") from None
    return str(value) if value not in (None, "") else None


def on_completion(uow: UnitOfWork, runtime: InstanceRuntime, live: Live, spiff_task: Any,
                  data: dict[str, Any], actor: Actor, now: datetime) -> None:
    """Apply the completed task's ``record.lock`` / ``record.unlock`` (same transaction as the task)."""
    props = properties_of(spiff_task.task_spec)
    if LOCK not in props and UNLOCK not in props:
        return
    context = {**spiff_task.data, **data}
    db = uow.db
    if UNLOCK in props and (key := _key(runtime, props[UNLOCK], context)):
        found = db.first("SELECT id, locked_at, locked_by FROM record_lock "
                         "WHERE record_key = :key AND unlocked_at IS NULL", {"key": key})
        if found is not None:
            db.execute("UPDATE record_lock SET unlocked_at = :at, unlocked_by = :by, "
                       "unlock_instance_id = :i WHERE id = :id",
                       {"at": db.time(now), "by": actor.id, "i": live.row.id, "id": found[0]})
            audit.record(uow, actor, "record.unlocked", "record", key, f"record {key}", at=now,
                         before={"locked": True, "locked_by": found[2]},
                         after={"locked": False, "instance_id": live.row.id,
                                "task": spiff_task.task_spec.bpmn_id})
    if LOCK in props and (key := _key(runtime, props[LOCK], context)):
        if db.first("SELECT id FROM record_lock WHERE record_key = :key AND unlocked_at IS NULL",
                    {"key": key}) is None:
            db.execute("INSERT INTO record_lock (record_key, locked_at, locked_by, holder_instance_id) "
                       "VALUES (:key, :at, :by, :holder)",
                       {"key": key, "at": db.time(now), "by": actor.id, "holder": live.row.id})
            audit.record(uow, actor, "record.locked", "record", key, f"record {key}", at=now,
                         before={"locked": False},
                         after={"locked": True, "instance_id": live.row.id,
                                "task": spiff_task.task_spec.bpmn_id})
