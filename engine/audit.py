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

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.orm import Session

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


def record(session: Session, actor: Actor, action: str, object_type: str, object_id: Any, label: str = "",
           *, at: datetime, before: Any = None, after: Any = None, reason: str | None = None,
           correlation_id: str | None = None) -> None:
    """Queue one audit event; it is chained and inserted when the session commits."""
    session.info.setdefault("audit_pending", []).append(dict(
        at=at, actor_id=actor.id, actor_name=actor.name, action=action, object_type=object_type,
        object_id=str(object_id), object_label=label[:300], before=normalized(before), after=normalized(after),
        reason=reason, correlation_id=correlation_id))


# Built once: this runs on every commit of every step, and building a statement costs more than running it.
_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_INSERT_EVENTS = insert(AuditEvent)
_ADVANCE_HEAD = update(AuditHead).where(AuditHead.id == 1).values(seq=bindparam("to_seq"), hash=bindparam("to_hash"))


@event.listens_for(Session, "before_commit")
def _chain_pending_events(session: Session) -> None:
    pending: list[dict[str, Any]] = session.info.pop("audit_pending", [])
    if not pending:
        return
    session.flush()  # the changes the events record go first
    conn = session.connection()  # Core from here: this runs on every commit of every step
    head = conn.execute(_LOCK_HEAD).first()
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
    if head is None:  # a database created before the migration seeded the head
        conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
    for ev in pending:
        seq += 1
        ev["seq"], ev["prev_hash"] = seq, prev
        ev["hash"] = prev = event_hash(ev)
    conn.execute(_INSERT_EVENTS, pending)
    conn.execute(_ADVANCE_HEAD, {"to_seq": seq, "to_hash": prev})


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
        return {"ok": self.ok, "checked": self.checked, "first_broken": self.first_broken, "reason": self.reason}


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
                return ChainReport(False, checked, ev.seq, "the previous-hash link does not match the event before it")
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
