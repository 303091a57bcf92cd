"""What pages poll to learn that something changed: the audit trail's head.

Every change of state writes its audit event in the same transaction (CONVENTIONS 7), so the highest
sequence number moves exactly when something changed. One indexed read; it tells a reader no more than that
something happened somewhere (not what, not where)."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.store import Database
from engine.store.models import AuditEvent


def marker(db: Database) -> int:
    """The audit trail's highest sequence number (0 while it is empty)."""
    with db.read() as session:
        return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)
