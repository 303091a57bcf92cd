"""Who may read what (21 CFR 11.10(d), (g)): reads need a reason, as writes need the model's role.

- Instances, their records (JSON, HTML, PDF copies; batch records) and signatures: the roles that review
  and oversee (``RECORD_READERS``), and the instance's own participants.
- The audit trail: ``AUDIT_READERS`` only (participants see their instance's trail inside its record).
- A participant of an instance: who started it, claimed or completed one of its tasks, signed in it, or
  holds an open task of it (an open task in a lane of one of his roles: it is in his inbox).

Everything else is refused with ``PermissionDenied`` ``not_permitted``. Services ask here, with the
caller's principal (``reader``); ``None`` is the engine itself or the command line, which read everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from engine.errors import PermissionDenied
from engine.identity import Principal
from engine.states import TaskState
from engine.store.dbapi import DbApi, numbered, placeholders
from engine.store.models import HumanTask, ProcessInstance, Signature, User

RECORD_READERS = frozenset({"qa", "supervisor", "process_owner", "admin"})
AUDIT_READERS = frozenset({"qa", "admin"})


def reads_every_record(reader: Principal | None) -> bool:
    return reader is None or bool(reader.roles & RECORD_READERS)


def _taking_part(reader: Principal) -> ColumnElement[bool]:
    """``ProcessInstance`` rows the reader takes part in (a WHERE clause)."""
    me = reader.username
    in_tasks = select(HumanTask.instance_id).where(or_(
        HumanTask.assignee == me, HumanTask.completed_by == me,
        (HumanTask.state == TaskState.OPEN) & HumanTask.lane.in_(sorted(reader.roles))))
    signed = select(Signature.instance_id).join(User, User.id == Signature.user_id).where(User.username == me)
    return or_(ProcessInstance.initiator == me, ProcessInstance.id.in_(in_tasks),
               ProcessInstance.id.in_(signed))


def visible_instances(query: Select[Any], reader: Principal | None) -> Select[Any]:
    """``query`` (of ``ProcessInstance``) narrowed to the instances ``reader`` may see (all for a record
    reader)."""
    return query if reader is None or reads_every_record(reader) else query.where(_taking_part(reader))


def check_instances(session: Session, reader: Principal | None, instance_ids: Iterable[int],
                    what: str) -> None:
    """Raise ``not_permitted`` unless ``reader`` reads every record or takes part in one of the instances."""
    if reader is None or reads_every_record(reader):
        return
    ids = sorted(set(instance_ids))
    if ids and session.scalar(select(ProcessInstance.id).where(ProcessInstance.id.in_(ids),
                                                               _taking_part(reader)).limit(1)) is not None:
        return
    raise PermissionDenied(f"Only participants of the instance and the roles "
                           f"{', '.join(sorted(RECORD_READERS))} may read {what}.", code="not_permitted")


def check_instance_on(db: DbApi, reader: Principal | None, instance_id: int, what: str) -> None:
    """``check_instances`` for one instance, in one statement on the DB-API (the status a client polls)."""
    if reader is None or reads_every_record(reader):
        return
    lanes = sorted(reader.roles)
    in_lane = (f" OR (t.state = :open AND t.lane IN ({placeholders('lane', len(lanes))}))" if lanes else "")
    found = db.first(
        "SELECT 1 FROM process_instance i WHERE i.id = :id AND (i.initiator = :me "
        "OR EXISTS (SELECT 1 FROM human_task t WHERE t.instance_id = i.id AND (t.assignee = :me "
        f"OR t.completed_by = :me{in_lane})) "
        "OR EXISTS (SELECT 1 FROM signature s JOIN app_user u ON u.id = s.user_id "
        "WHERE s.instance_id = i.id AND u.username = :me))",
        {"id": instance_id, "me": reader.username, "open": TaskState.OPEN, **numbered("lane", lanes)})
    if found is None:
        raise PermissionDenied(f"Only participants of the instance and the roles "
                               f"{', '.join(sorted(RECORD_READERS))} may read {what}.", code="not_permitted")


def visible_ids(session: Session, reader: Principal | None, instance_ids: Iterable[int]) -> set[int]:
    """Those of ``instance_ids`` whose records ``reader`` may read."""
    ids = set(instance_ids)
    if reader is None or reads_every_record(reader) or not ids:
        return ids
    return set(session.scalars(select(ProcessInstance.id).where(ProcessInstance.id.in_(sorted(ids)),
                                                                 _taking_part(reader))))


def check_every_record(reader: Principal | None, what: str) -> None:
    """Raise ``not_permitted`` unless ``reader`` reads every record (e.g. signatures of all instances)."""
    if not reads_every_record(reader):
        raise PermissionDenied(f"Only the roles {', '.join(sorted(RECORD_READERS))} may read {what}; "
                               "participants may read those of their own instance.", code="not_permitted")
