"""The audit trail: append-only, hash-chained, written in the same transaction as the change.

Services call ``record``; events are chained when the transaction commits (``before_commit``), under a
lock on the chain head, so the sequence has no gaps and the chain never forks, whichever transaction
commits first. No code path updates or deletes an event; database triggers refuse it too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from engine.store.db import UnitOfWork
from engine.store.dbapi import DbApi, dbapi
from engine.store.models import AuditEvent, AuditHead

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (id = username) or the engine itself."""

    id: str
    name: str

    @classmethod
    def system(cls) -> Actor:
        return cls("system", "gmpflow engine")


def canonical_json(value: Any) -> str:
    """The one serialization that is hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalized(value: Any) -> Any:
    """The JSON form of a value, as it reads back from the database."""
    return None if value is None else json.loads(canonical_json(value))


HASHED_FIELDS = ("seq", "actor_id", "actor_name", "action", "object_type", "object_id", "object_label",
                 "before", "after", "reason", "correlation_id", "prev_hash")


def event_hash(ev: AuditEvent | dict[str, Any]) -> str:
    """SHA-256 of the event's canonical JSON (every field but the hash itself)."""
    values = ev if isinstance(ev, dict) else {name: getattr(ev, name) for name in (*HASHED_FIELDS, "at")}
    body = {name: values[name] for name in HASHED_FIELDS}
    body["at"] = values["at"].astimezone(timezone.utc).isoformat(timespec="microseconds")
    return sha256_hex(canonical_json(body))


def record(session: Session | UnitOfWork, actor: Actor, action: str, object_type: str, object_id: Any,
           label: str = "",
           *, at: datetime, before: Any = None, after: Any = None, reason: str | None = None,
           correlation_id: str | None = None) -> None:
    """Queue one audit event; it is chained and inserted when the unit of work commits."""
    session.info.setdefault("audit_pending", []).append(dict(
        at=at, actor_id=actor.id, actor_name=actor.name, action=action, object_type=object_type,
        object_id=str(object_id), object_label=label[:300],
        before=normalized(before), after=normalized(after),
        reason=reason, correlation_id=correlation_id))


# Every commit of every step runs these: on the DB-API (engine.store.dbapi). SQLite ignores FOR UPDATE:
# its writers are serialized already (BEGIN IMMEDIATE behind the writer queue).
_LOCK_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
_INSERT_HEAD = "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :hash)"
_INSERT_EVENT = ("INSERT INTO audit_event (seq, at, actor_id, actor_name, action, object_type, object_id, "
                 "object_label, before, after, reason, correlation_id, prev_hash, hash) VALUES (:seq, :at, "
                 ":actor_id, :actor_name, :action, :object_type, :object_id, :object_label, :before, :after, "
                 ":reason, :correlation_id, :prev_hash, :hash)")
_ADVANCE_HEAD = "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"


@event.listens_for(Session, "before_commit")
def _chain_session_events(session: Session) -> None:
    if session.info.get("audit_pending"):
        session.flush()  # the changes the events record go first
        _chain(dbapi(session), session.info.pop("audit_pending"))


def _chain_unit_events(uow: UnitOfWork) -> None:
    if uow.info.get("audit_pending"):
        _chain(uow.db, uow.info.pop("audit_pending"))


UnitOfWork.BEFORE_COMMIT.append(_chain_unit_events)


def _chain(db: DbApi, pending: list[dict[str, Any]]) -> None:
    """Number, link and insert the pending events, and advance the chain head (locked on PostgreSQL)."""
    head = db.first(_LOCK_HEAD + (" FOR UPDATE" if db.is_postgres else ""))
    seq, prev = (head[0], head[1]) if head is not None else (0, GENESIS)
    if head is None:  # a database created before the migration seeded the head
        db.execute(_INSERT_HEAD, {"hash": GENESIS})
    rows = []
    for ev in pending:
        seq += 1
        ev["seq"], ev["prev_hash"] = seq, prev
        ev["hash"] = prev = event_hash(ev)
        rows.append({**ev, "at": db.time(ev["at"]), "before": db.json(ev["before"]),
                     "after": db.json(ev["after"])})
    db.many(_INSERT_EVENT, rows)
    db.execute(_ADVANCE_HEAD, {"seq": seq, "hash": prev})


@event.listens_for(Session, "after_rollback")
def _drop_pending_events(session: Session) -> None:
    session.info.pop("audit_pending", None)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken: int | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_broken": self.first_broken,
                "reason": self.reason}


def verify_chain(session: Session) -> ChainReport:
    """Recompute the chain; name the first broken link (edited, deleted, inserted or re-ordered event)."""
    expected_seq, prev, checked = 1, GENESIS, 0
    result = session.execute(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    try:
        for ev in result.scalars():
            checked += 1
            if ev.seq != expected_seq:
                return ChainReport(False, checked, expected_seq, f"event {expected_seq} is missing")
            if ev.prev_hash != prev:
                return ChainReport(False, checked, ev.seq,
                                   "the previous-hash link does not match the event before it")
            if event_hash(ev) != ev.hash:
                return ChainReport(False, checked, ev.seq, "the event's content does not match its hash")
            prev, expected_seq = ev.hash, expected_seq + 1
    finally:
        result.close()  # a server-side cursor on PostgreSQL when we stop early
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return ChainReport(False, checked, expected_seq, "events after this one were deleted (the chain head "
                           "records a later event)")
    return ChainReport(True, checked, None, None)
