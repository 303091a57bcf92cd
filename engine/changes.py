"""What pages poll to learn that something changed: the audit trail's head, shown to each reader as an opaque
marker.

Every change of state writes its audit event in the same transaction (CONVENTIONS 7), so the highest
sequence number moves exactly when something changed. One indexed read. The number itself is not shown: it
counts every event of the installation (sign-ins, signatures, refusals), so a reader could learn how much
others did and when. The marker is a keyed hash of the number and the reader's name: it changes when the
number does, says nothing about by how much, and means nothing to anyone else."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import func, select

from engine.store import Database
from engine.store.models import AuditEvent


def head(db: Database) -> int:
    """The audit trail's highest sequence number (0 while it is empty)."""
    with db.read() as session:
        return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)


def marker(db: Database, key: str, reader: str) -> str:
    """The head for ``reader``, keyed with the installation secret ``key``."""
    message = f"{reader}\0{head(db)}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]
