"""Tampering as someone with write access to the database (but not to the audit key file) would do it:
SQL straight to the database, the append-only triggers switched off, links recomputed as plain SHA-256."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, text

from engine.audit import GENESIS, event_hash
from engine.services import Gmpflow
from engine.store.models import AuditEvent


def raw(engine: Gmpflow, *statements: str, **params: object) -> None:
    """Run SQL directly, bypassing the engine, in one transaction."""
    with engine.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


@contextmanager
def unguarded(engine: Gmpflow) -> Iterator[Gmpflow]:
    """The audit trail's append-only triggers off, as an attacker with database rights could (restored on
    PostgreSQL, whose database the next test reuses; the SQLite file is this test's own)."""
    if engine.db.is_postgres:
        raw(engine, "ALTER TABLE audit_event DISABLE TRIGGER USER")
        try:
            yield engine
        finally:
            raw(engine, "ALTER TABLE audit_event ENABLE TRIGGER USER")
    else:
        raw(engine, "DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete")
        yield engine


def rechain_plain(engine: Gmpflow, from_seq: int = 1) -> None:
    """Recompute every link from ``from_seq`` on as plain SHA-256 (what verify accepted before the key) and
    set the chain head to match: a consistent rewrite by someone without the key."""
    with engine.db.read() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    prev = GENESIS
    with engine.db.engine.begin() as conn:
        for ev in events:
            if ev.seq >= from_seq:
                ev.prev_hash = prev
                ev.hash = event_hash(ev)
                conn.execute(text("UPDATE audit_event SET prev_hash = :prev, hash = :hash WHERE seq = :seq"),
                             {"prev": ev.prev_hash, "hash": ev.hash, "seq": ev.seq})
            prev = ev.hash
        last = events[-1].seq if events else 0
        conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                     {"seq": last, "hash": prev})


def cut_tail(engine: Gmpflow, keep: int) -> None:
    """Delete every event after ``keep`` and set the head back to it: a consistent cut."""
    raw(engine, "DELETE FROM audit_event WHERE seq > :keep", keep=keep)
    raw(engine, "UPDATE audit_head SET seq = :keep, hash = (SELECT hash FROM audit_event WHERE seq = :keep) "
                "WHERE id = 1", keep=keep)


def head_seq(engine: Gmpflow) -> int:
    with engine.db.read() as session:
        return int(session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0)
