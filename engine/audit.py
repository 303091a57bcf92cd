"""The audit trail: append-only, hash-chained, written in the same transaction as the change.

Services call ``record`` with their unit of work (``engine.store.db.UnitOfWork``, or its ORM session);
the events wait on the unit and are chained by its commit (``UnitOfWork.prepare_commit`` calls
``chain_pending``), under a lock on the chain head, so the sequence has no gaps and the chain never forks,
whichever transaction commits first. A unit that rolls back takes its events with it. The trail only
records: state lives in its own tables. No code path updates or deletes an event; database triggers
refuse it too.

The chain is keyed: from the ``audit.keyed`` event on (``audit_head.keyed_from``), each link is an
HMAC-SHA-256 of the event with the installation's key, which lives outside the database
(``engine.integrity``), so that someone who can write the database cannot rewrite events and recompute
the links. Links before that event (a database created before the key existed) stay plain SHA-256 and
are verified as such: the keyed event's own MAC covers the last of them, so they cannot change either.
The key is introduced once, by ``introduce_key`` (``gmpflow init``); a trail without it refuses writes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import AuditKeyMissing, GmpflowError
from engine.integrity import ALGORITHM, AuditKey
from engine.store.dbapi import DbApi
from engine.store.models import AuditEvent, AuditHead

if TYPE_CHECKING:  # engine.store.db calls chain_pending at each commit
    from engine.store.db import UnitOfWork

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
    if value is None:
        return None
    plain = _plain(value)  # every step records a few small payloads: most are plain already
    return json.loads(canonical_json(value)) if plain is _NOT_PLAIN else plain


_NOT_PLAIN = object()
_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """``json.loads(canonical_json(value))`` without the text, for values made of exactly JSON's own types
    (str keys, no subclasses such as enums, no tuples); ``_NOT_PLAIN`` for any other value."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        result = {}
        for key in sorted(value) if all(type(k) is str for k in value) else ():
            item = _plain(value[key])
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            result[key] = item
        return result if len(result) == len(value) else _NOT_PLAIN
    if kind is list:
        items = [_plain(item) for item in value]
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items) else items
    return _NOT_PLAIN


HASHED_FIELDS = ("seq", "actor_id", "actor_name", "action", "object_type", "object_id", "object_label",
                 "before", "after", "reason", "correlation_id", "prev_hash")


KEYED_ACTION = "audit.keyed"  # the event from which on links are MACs


def event_hash(ev: AuditEvent | dict[str, Any], key: AuditKey | None = None) -> str:
    """The event's link: HMAC-SHA-256 with ``key`` (SHA-256 without: events before the key) of its
    canonical JSON (every field but the link itself)."""
    values = ev if isinstance(ev, dict) else {name: getattr(ev, name) for name in (*HASHED_FIELDS, "at")}
    body = {name: values[name] for name in HASHED_FIELDS}
    body["at"] = values["at"].astimezone(timezone.utc).isoformat(timespec="microseconds")
    text = canonical_json(body)
    return key.mac(text) if key is not None else sha256_hex(text)


def unit_of(work: Session | UnitOfWork) -> UnitOfWork:
    """The unit of work of ``work`` (itself, or the unit whose ORM session it is). A session that writes
    nothing (``Database.read``) or that is not the engine's records no event: refused."""
    unit: UnitOfWork | None = work.info.get("unit_of_work") if isinstance(work, Session) else work
    if unit is None:
        raise TypeError("Audit events are recorded in a unit of work (Database.transaction or "
                        "Database.unit_of_work), not in this session.")
    return unit


def record(work: Session | UnitOfWork, actor: Actor, action: str, object_type: str, object_id: Any,
           label: str = "",
           *, at: datetime, before: Any = None, after: Any = None, reason: str | None = None,
           correlation_id: str | None = None) -> None:
    """Queue one audit event on the unit of work ``work`` (or its ORM session); the unit's commit chains
    and inserts it, in the same transaction as the change it records.

    ``correlation_id`` defaults to the unit's (``UnitOfWork.correlation_id``): the id of the request the unit
    was opened for. The unit carries it, rather than each call, because the events of one request are
    recorded far below the service that knows the request (a step's task, signature and instance events,
    identity's lockout), and every one of them belongs to it: one argument where the unit is opened cannot be
    forgotten in a helper the way an argument to each ``record`` can."""
    unit = unit_of(work)
    unit.audit_pending.append(dict(
        at=at, actor_id=actor.id, actor_name=actor.name, action=action, object_type=object_type,
        object_id=str(object_id), object_label=label[:300],
        before=normalized(before), after=normalized(after),
        reason=reason, correlation_id=correlation_id if correlation_id is not None else unit.correlation_id))


# Every commit of every step runs these: on the DB-API (engine.store.dbapi). SQLite ignores FOR UPDATE:
# its writers are serialized already (BEGIN IMMEDIATE behind the writer queue).
_LOCK_HEAD = "SELECT seq, hash, keyed_from FROM audit_head WHERE id = 1"
_INSERT_HEAD = "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :hash)"
_INSERT_EVENT = ("INSERT INTO audit_event (seq, at, actor_id, actor_name, action, object_type, object_id, "
                 "object_label, before, after, reason, correlation_id, prev_hash, hash) VALUES (:seq, :at, "
                 ":actor_id, :actor_name, :action, :object_type, :object_id, :object_label, :before, :after, "
                 ":reason, :correlation_id, :prev_hash, :hash)")
_ADVANCE_HEAD = "UPDATE audit_head SET seq = :seq, hash = :hash, keyed_from = :keyed_from WHERE id = 1"


def chain_pending(uow: UnitOfWork) -> None:
    """Chain and insert the events recorded in ``uow``: called by its commit (``UnitOfWork.prepare_commit``),
    after its changes are flushed and before the driver commits."""
    if uow.audit_pending:
        pending, uow.audit_pending = uow.audit_pending, []
        _chain(uow.db, pending, uow.audit_key, uow.introduces_key)


def _chain(db: DbApi, pending: list[dict[str, Any]], key: AuditKey | None, introducing: bool) -> None:
    """Number, link (MAC) and insert the pending events, and advance the chain head (locked on PostgreSQL).

    ``introducing``: the first pending event is ``audit.keyed`` (``introduce_key``); otherwise a trail
    not keyed yet refuses the write."""
    head = db.first(_LOCK_HEAD + (" FOR UPDATE" if db.is_postgres else ""))
    seq, prev, keyed_from = (head[0], head[1], head[2]) if head is not None else (0, GENESIS, None)
    if head is None:  # a database created before the migration seeded the head
        db.execute(_INSERT_HEAD, {"hash": GENESIS})
    if key is None:
        raise AuditKeyMissing("This session has no audit key (use a session of engine.store.Database).")
    if keyed_from is None:
        if not introducing:
            raise GmpflowError("The audit trail has no key yet: run `gmpflow init` to introduce it.",
                               code="audit_not_keyed")
        keyed_from = seq + 1
    rows = []
    for ev in pending:
        seq += 1
        ev["seq"], ev["prev_hash"] = seq, prev
        ev["hash"] = prev = event_hash(ev, key)
        rows.append({**ev, "at": db.time(ev["at"]), "before": db.json(ev["before"]),
                     "after": db.json(ev["after"])})
    db.many(_INSERT_EVENT, rows)
    db.execute(_ADVANCE_HEAD, {"seq": seq, "hash": prev, "keyed_from": keyed_from})


@dataclass(frozen=True)
class ChainReport:
    """What verify found; ``table`` and ``row_id`` name a sealed row changed outside gmpflow."""

    ok: bool
    checked: int
    first_broken: int | None
    reason: str | None
    table: str | None = None
    row_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        found = {"ok": self.ok, "checked": self.checked, "first_broken": self.first_broken,
                 "reason": self.reason}
        if self.table is not None:
            found.update(table=self.table, row_id=self.row_id)
        return found


def introduce_key(work: Session | UnitOfWork, actor: Actor, at: datetime,
                  sealed_rows: dict[str, int]) -> None:
    """Queue the ``audit.keyed`` event: from it on (itself included) the chain's links are MACs with the
    key of ``work``'s database. ``sealed_rows``: how many existing rows got their first row MAC now
    (trusted as found: the trail says so)."""
    unit = unit_of(work)
    key = unit.audit_key
    record(unit, actor, KEYED_ACTION, "audit", "key", "audit key", at=at,
           after={"key_id": key.key_id, "algorithm": ALGORITHM, "sealed_rows": sealed_rows})
    unit.introduces_key = True


def is_keyed(session: Session) -> bool:
    head = session.get(AuditHead, 1)
    return head is not None and head.keyed_from is not None


def verify_chain(session: Session) -> ChainReport:
    """Recompute the chain; name the first broken link (edited, deleted, inserted or re-ordered event, or a
    link recomputed without the key). A missing key file fails verification, saying so."""
    key: AuditKey | None = session.info.get("audit_key")
    try:
        if key is None:
            raise AuditKeyMissing("This session has no audit key (use a session of engine.store.Database).")
        key.key  # noqa: B018 -- read it now: a missing key fails before anything is checked
    except AuditKeyMissing as exc:
        return ChainReport(False, 0, None, str(exc))
    expected_seq, prev, checked, keyed_from = 1, GENESIS, 0, None
    result = session.execute(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))
    try:
        for ev in result.scalars():
            checked += 1
            if ev.seq != expected_seq:
                return ChainReport(False, checked, expected_seq, f"event {expected_seq} is missing")
            if ev.prev_hash != prev:
                return ChainReport(False, checked, ev.seq,
                                   "the previous-hash link does not match the event before it")
            if keyed_from is None and ev.action == KEYED_ACTION and ev.object_type == "audit":
                keyed_from = ev.seq
            if event_hash(ev, key if keyed_from is not None else None) != ev.hash:
                return ChainReport(False, checked, ev.seq, _mismatch(ev, key, keyed_from))
            prev, expected_seq = ev.hash, expected_seq + 1
    finally:
        result.close()  # a server-side cursor on PostgreSQL when we stop early
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return ChainReport(False, checked, expected_seq, "events after this one were deleted (the chain head "
                           "records a later event)")
    if keyed_from is None or (head is not None and head.keyed_from != keyed_from):
        return ChainReport(False, checked, (head.keyed_from if head is not None else None) or 1,
                           "the trail has no valid audit.keyed event where the chain head says the key was "
                           "introduced: it was never keyed (run `gmpflow init`) or its keyed part was "
                           "replaced")
    return ChainReport(True, checked, None, None)


def _mismatch(ev: AuditEvent, key: AuditKey, keyed_from: int | None) -> str:
    if keyed_from is None:
        return "the event's content does not match its hash"
    if ev.seq == keyed_from and (ev.after or {}).get("key_id") != key.key_id:
        return (f"the trail was keyed with another key (key id {(ev.after or {}).get('key_id')}) than the "
                f"key file {key.path} (key id {key.key_id})")
    if event_hash(ev) == ev.hash:
        return "the event's link was recomputed as a plain hash without the audit key (rewritten)"
    return "the event's content does not match its MAC"
