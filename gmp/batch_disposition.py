"""A batch's dispositions and reopens, and the hash of its record (parts of ``gmp.batch_record``).

Status of a batch: the latest of its QA dispositions (``released``, ``rejected``, ``quarantined``; the
task of each ``batch_release`` whose ``record.role`` is ``disposition``) and its approved reopens
(``batch_reopen``, which put it back ``under_review``); before any of them ``under_review`` once a release was
requested, else ``in_production``. ``locked``: a disposition locked the record (``record_lock``, see
``engine.runtime.record_locks``) and no approved reopen has opened it since.

``sha256`` of the record: SHA-256 of the canonical JSON (``engine.audit.canonical_json``) of the record's
facts, that is every member except ``sha256`` itself, ``generated_at`` (the time of the copy) and
``audit_trail`` (the history of those facts: it also grows by events that change no fact, such as a QA
person claiming the release task between reading the record and signing). The hash is therefore stable
while nothing in the record changes, and changes with any entry, correction, deviation, review or
disposition. ``facts`` is what a signature on a batch keeps (``engine.signed_records``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.signed_records import facts_sha256
from engine.store.models import AuditEvent, HumanTask, ProcessInstance, RecordLock
from gmp.record_roles import RoleIndex

if TYPE_CHECKING:
    from engine.runtime.specs import SpecCache

REOPEN_PROCESS = "batch_reopen"
VOLATILE = ("sha256", "generated_at", "audit_trail")
Entry = Callable[[HumanTask], dict[str, Any]]


def facts_of(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def with_hash(record: dict[str, Any]) -> dict[str, Any]:
    record["sha256"] = facts_sha256(facts_of(record))
    return record


def reopen_rows(session: Session, batch_id: str) -> list[ProcessInstance]:
    return list(session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key == REOPEN_PROCESS, ProcessInstance.business_key == batch_id)
        .order_by(ProcessInstance.id)))


def _requests(session: Session, instance_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The start variables of each reopen (its ``instance.started`` event): the reason asked for."""
    return {int(e.object_id): dict((e.after or {}).get("variables") or {}) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.action == "instance.started",
                                 AuditEvent.object_type == "instance",
                                 AuditEvent.object_id.in_([str(i) for i in instance_ids])))}


def _meaning(entry: dict[str, Any]) -> str | None:
    return next((s["meaning"] for s in entry.get("signatures") or []), None)


def history(session: Session, batch_id: str, releases: list[ProcessInstance], reopens: list[ProcessInstance],
            tasks: dict[int, list[HumanTask]], entry: Entry, names: dict[str, str],
            role: Callable[[HumanTask], str | None]) -> dict[str, Any]:
    """``{status, locked, events}``: every disposition and reopen, oldest first (who, when, meaning, why)."""
    events: list[dict[str, Any]] = []
    for release in releases:
        for task in tasks.get(release.id, []):
            if role(task) == "disposition":
                done, data = entry(task), task.data or {}
                events.append({"kind": "disposition", "instance_id": release.id,
                               "disposition": data.get("disposition"), "reason": data.get("decision_reason"),
                               "by": done["by"], "by_name": done["by_name"], "at": done["at"],
                               "meaning": _meaning(done), "_task": task.id})
    requests = _requests(session, [r.id for r in reopens])
    for row in reopens:
        approval = next((t for t in reversed(tasks.get(row.id, [])) if role(t) == "reopen_approval"), None)
        if approval is None:
            continue
        done, data = entry(approval), approval.data or {}
        events.append({"kind": "reopen", "instance_id": row.id,
                       "decision": data.get("reopen_decision"),
                       "reason": requests.get(row.id, {}).get("reopen_reason"),
                       "comment": data.get("approval_comment"),
                       "requested_by": row.initiator, "requested_by_name": names.get(row.initiator),
                       "requested_at": row.started_at.astimezone(timezone.utc).isoformat(),
                       "by": done["by"], "by_name": done["by_name"], "at": done["at"],
                       "meaning": _meaning(done), "_task": approval.id})
    events.sort(key=lambda e: (str(e["at"]), e.pop("_task")))  # equal times: in the order of the tasks
    status = "under_review" if releases else "in_production"
    for event in events:
        if event["kind"] == "disposition":
            status = str(event["disposition"])
        elif event["decision"] == "approve":
            status = "under_review"
    locked = session.scalar(select(RecordLock.id).where(RecordLock.record_key == batch_id,
                                                        RecordLock.unlocked_at.is_(None)).limit(1))
    return {"status": status, "locked": locked is not None, "events": events}


def overview(session: Session, specs: SpecCache, batch_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``history`` of many batches at once, for the batch list (a few queries, whatever their number)."""
    from engine import signatures
    from engine.states import TaskState
    from engine.store.models import Signature, User

    rows = list(session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key.in_(("batch_release", REOPEN_PROCESS)),
        ProcessInstance.business_key.in_(batch_ids)).order_by(ProcessInstance.id)))
    ids = [r.id for r in rows]
    tasks: dict[int, list[HumanTask]] = {}
    for task in session.scalars(select(HumanTask).where(
            HumanTask.instance_id.in_(ids), HumanTask.state == TaskState.COMPLETED)
                                .order_by(HumanTask.completed_at)):
        tasks.setdefault(int(task.instance_id), []).append(task)
    signed: dict[str, list[dict[str, Any]]] = {}
    for sig, username in session.execute(select(Signature, User.username)
                                         .join(User, User.id == Signature.user_id)
                                         .where(Signature.instance_id.in_(ids))):
        signed.setdefault(sig.task_guid, []).append(signatures.manifestation(sig, username))
    names = dict(session.execute(select(User.username, User.full_name)).all())
    roles = RoleIndex(session, specs, rows)

    def entry(task: HumanTask) -> dict[str, Any]:
        return {"by": task.completed_by, "by_name": names.get(task.completed_by or ""),
                "at": task.completed_at.astimezone(timezone.utc).isoformat() if task.completed_at else None,
                "signatures": signed.get(task.task_guid, [])}

    return {key: history(session, key, [r for r in rows if r.business_key == key and
                                        r.process_key == "batch_release"],
                         [r for r in rows if r.business_key == key and r.process_key == REOPEN_PROCESS],
                         tasks, entry, names, roles.of) for key in batch_ids}
