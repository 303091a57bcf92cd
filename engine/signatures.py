"""Electronic signatures bound to the records they sign (21 CFR 11.50, 11.70, 11.100, 11.200; Annex 11 §14).

The model says which user tasks need a signature (``signature.meaning``) and who may not sign
(``signature.distinctFrom``). ``make_signer`` returns the check that ``tasks.complete`` runs inside
the instance's transaction: the signer is the authenticated user, re-enters the password, holds a
usable account, chooses an allowed meaning, and is not excluded by four-eyes rules. The signature
row stores exactly what was signed and its SHA-256; ``verify_all`` recomputes every hash and checks
that each signature still sits on the record it signed, with the data it signed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, identity, signed_records
from engine.audit import ChainReport, canonical_json, sha256_hex
from engine.clock import Clock
from engine.definitions.properties import split_list
from engine.errors import SignatureRejected
from engine.identity import Principal
from engine.states import TaskState
from engine.store.dbapi import DbApi, numbered, placeholders
from engine.store.models import AuditEvent, Deployment, HumanTask, ProcessInstance, Signature, User

if TYPE_CHECKING:
    from engine.runtime.instances import Live
    from engine.runtime.rows import InstanceRow
    from engine.runtime.tasks import Task
    from engine.store.db import UnitOfWork

Signer = Callable[["UnitOfWork", "Task", "Live", dict[str, Any]], None]


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def signed_record(definition_hash: str, instance_id: int, task: Task, data: dict[str, Any], meaning: str,
                  signer: str, signed_at: datetime) -> dict[str, Any]:
    """Exactly what a signature signs; its canonical JSON is hashed into ``record_hash``."""
    return {"definition_hash": definition_hash, "instance_id": instance_id, "task_id": task.task_guid,
            "task_name": task.name, "element_id": task.element_id, "data": audit.normalized(data),
            "meaning": meaning, "signer": signer, "signed_at": utc_iso(signed_at)}


def record_hash(record: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(record))


def make_signer(clock: Clock, principal: Principal, signature: dict[str, Any] | None,
                records: signed_records.RecordBinder | None = None, *, at: datetime | None = None) -> Signer:
    """The signing step for ``tasks.complete``; raises SignatureRejected with a stable code. The signature is
    dated ``at`` (the request's time; default the clock's now); whether the password must be changed first
    is asked of the clock.

    A four-eyes conflict (``signature_four_eyes``) is told first, whatever else was sent (no password is
    checked then), and never counts toward lockout: it is the model's rule, not a guess at a password.
    Without a ``signature`` it only insists when the task requires one (``signature_required``); a
    completion without any signature object is not a signing attempt and does not count toward lockout.
    Every other rejection counts against the authenticated user (see ``SignatureRejected``).
    """

    def sign(uow: UnitOfWork, task: Task, live: Live, data: dict[str, Any]) -> None:
        allowed = split_list(task.signature_meaning)
        if not allowed and signature is None:
            return  # nothing to sign: no ORM session on the hot path
        me = principal.username
        session = uow.session
        if allowed:
            conflict = four_eyes_conflict(session, live.row, task, _task_data(live, task), me)
            if conflict:
                raise SignatureRejected(conflict, code="signature_four_eyes")
        if signature is None:
            raise SignatureRejected(f"The task '{task.name}' must be signed ({', '.join(allowed)}): give "
                                    "username, password and meaning.", code="signature_required")

        def reject(message: str, code: str) -> SignatureRejected:
            return SignatureRejected(message, code=code, counted_against=me)

        username, password, meaning = (signature.get(k) for k in ("username", "password", "meaning"))
        if not all(isinstance(v, str) and v for v in (username, password, meaning)):
            raise reject("A signature needs username, password and meaning.", "signature_required")
        if username != me:
            raise reject("The signature's username must be the logged-in user's own.",
                         "signature_user_mismatch")
        # the record read (signature.record): a changed one is refused before the password is asked
        read = records.bind(session, task, live, signature) if records is not None else None
        user = identity.get_user(session, me)
        if not user.active or user.locked:
            raise SignatureRejected("This account is locked or deactivated; it cannot sign.",
                                    code="signature_account_locked")
        if not identity.check_password(user, str(password)):
            raise reject("The password is wrong; the signature is refused.", "signature_password_invalid")
        if identity.password_change_due(user, clock):
            raise SignatureRejected("The password must be changed before this account can sign (one-time or "
                                    "expired password).", code="signature_password_change_required")
        if meaning not in allowed:
            raise reject(f"The task '{task.name}' can be signed as {', '.join(allowed) or 'nothing'}, not "
                         f"'{meaning}'.", "signature_meaning_not_allowed")
        now = at or clock.now()
        record = signed_record(live.row.content_hash, live.row.id, task, data, str(meaning), me, now)
        if read is not None:  # kept inside what is signed: the signature's own hash covers it
            record["read_record"] = read
        row = Signature(user_id=user.id, printed_name=user.full_name, meaning=str(meaning), signed_at=now,
                        instance_id=live.row.id, task_guid=task.task_guid, record_hash=record_hash(record),
                        record=record)
        session.add(row)
        session.flush()
        user.failed_attempts = 0
        audit.record(session, principal.actor, "signature.created", "signature", row.id,
                     f"{meaning} by {user.full_name}: {task.name} ({live.row.process_key} #{live.row.id})",
                     at=now, after={"instance_id": live.row.id, "task_id": task.task_guid, "meaning": meaning,
                            "printed_name": user.full_name, "signed_at": utc_iso(now),
                            "record_hash": row.record_hash,
                            **({"record_sha256": read["sha256"]} if read is not None else {})})

    return sign


def _task_data(live: Live, task: Task) -> dict[str, Any]:
    from uuid import UUID

    spiff_task = live.workflow.get_task_from_id(UUID(task.task_guid))
    return dict(spiff_task.data) if spiff_task is not None else {}


def four_eyes_conflict(session: Session, instance: InstanceRow | ProcessInstance, task: Task,
                       variables: dict[str, Any] | None, username: str) -> str | None:
    """Why ``username`` may not sign ``task`` (four eyes), in words for them; None when they may."""
    why = excluded_signers(session, instance, task, variables).get(username)
    return f"You may not sign '{task.name}': {why} (four eyes)." if why else None


def excluded_signers(session: Session, instance: InstanceRow | ProcessInstance, task: Task,
                     variables: dict[str, Any] | None = None) -> dict[str, str]:
    """Username → why they may not sign ``task``, from its ``signature.distinctFrom`` rules (the rules are
    listed in ``engine.definitions.properties``).

    ``variable:<name>``: the usernames in the task's variable ``<name>`` (a list, e.g. everyone who performed
    or verified a step of a batch, gathered by a service task before the signing task; ``a.b`` reads key
    ``b`` of variable ``a``).
    """
    excluded: dict[str, str] = {}
    for rule in split_list(task.signature_distinct_from):
        kind, _, element_id = rule.partition(":")
        if kind in ("initiator", "all"):
            excluded.setdefault(instance.initiator, "they started the process")
        if kind == "all":
            for who in session.scalars(select(User.username).join(Signature, Signature.user_id == User.id)
                                       .where(Signature.instance_id == instance.id)):
                excluded.setdefault(who, "they signed an earlier step of this process")
        elif kind == "related":
            for who, why in _related(session, instance):
                excluded.setdefault(who, why)
        elif kind == "performer":
            # the entry that stands: an earlier completion that the process sent back (refused, incomplete)
            # is an attempt, and whoever made it may still witness another person's accepted entry
            performer = session.scalar(select(HumanTask.completed_by).where(
                HumanTask.instance_id == instance.id, HumanTask.element_id == element_id,
                HumanTask.state == TaskState.COMPLETED).order_by(HumanTask.completed_at.desc(),
                                                                 HumanTask.id.desc()).limit(1))
            if performer:
                excluded.setdefault(performer, f"they performed '{element_id}'")
        elif kind == "signers":
            guids = select(HumanTask.task_guid).where(HumanTask.instance_id == instance.id,
                                                      HumanTask.element_id == element_id)
            for who in session.scalars(select(User.username).join(Signature, Signature.user_id == User.id)
                                       .where(Signature.instance_id == instance.id,
                                              Signature.task_guid.in_(guids))):
                excluded.setdefault(who, f"they signed '{element_id}'")
        elif kind == "variable":
            value: Any = variables or {}
            for part in element_id.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            for who in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(who, str) and who:
                    excluded.setdefault(who, f"they are listed in '{element_id}' "
                                             "(they took part in the work)")
    return excluded


def _related(session: Session, instance: InstanceRow | ProcessInstance) -> list[tuple[str, str]]:
    """Who completed or signed a task in an instance of another process with this one's business key, or in
    any instance whose key lies below it (``<key>/...``), with why; nothing without a business key."""
    key = instance.business_key
    if not key:
        return []
    # an earlier run of this same process on the same key (e.g. the release before a governed reopen) is the
    # same role's work, not taking part in the record: only other processes and sub-records count
    related = (select(ProcessInstance.id)
               .where(ProcessInstance.id != instance.id,
                      ((ProcessInstance.business_key == key)
                       & (ProcessInstance.process_key != instance.process_key))
                      | ProcessInstance.business_key.startswith(f"{key}/", autoescape=True)))
    completed = session.execute(
        select(HumanTask.completed_by, HumanTask.name, ProcessInstance.process_key, ProcessInstance.id)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(HumanTask.instance_id.in_(related), HumanTask.state == TaskState.COMPLETED)
        .order_by(HumanTask.id))
    signed = session.execute(
        select(User.username, Signature.meaning, ProcessInstance.process_key, ProcessInstance.id)
        .join(User, User.id == Signature.user_id)
        .join(ProcessInstance, ProcessInstance.id == Signature.instance_id)
        .where(Signature.instance_id.in_(related)).order_by(Signature.id))
    return ([(who, f"they completed '{name}' in {process} #{iid}") for who, name, process, iid in completed
             if who]
            + [(who, f"they signed '{meaning}' in {process} #{iid}")
               for who, meaning, process, iid in signed])


def signatures_of(session: Session, instance_id: int | None = None, task_guids: list[str] | None = None
                  ) -> list[tuple[Signature, str]]:
    """Signatures (oldest first) with the signer's username, of one instance and/or of some tasks."""
    query = select(Signature, User.username).join(User, User.id == Signature.user_id).order_by(Signature.id)
    if instance_id is not None:
        query = query.where(Signature.instance_id == instance_id)
    if task_guids is not None:
        query = query.where(Signature.task_guid.in_(task_guids))
    return [(sig, username) for sig, username in session.execute(query)]


_MANIFESTATIONS = ("SELECT s.id, s.instance_id, s.task_guid, u.username, s.printed_name, s.meaning, "
                   "s.signed_at, s.record_hash FROM signature s JOIN app_user u ON u.id = s.user_id WHERE ")


def manifestations(db: DbApi, instance_id: int | None = None, task_guids: list[str] | None = None
                   ) -> list[dict[str, Any]]:
    """``manifestation`` of the signatures of one instance and/or of some tasks (oldest first), read from
    their indexed columns on the DB-API: every task the API shows asks for them, and the ORM objects with
    their signed records cost milliseconds where this costs a statement."""
    where, params = [], {}
    if instance_id is not None:
        where.append("s.instance_id = :instance_id")
        params["instance_id"] = instance_id
    if task_guids is not None:
        if not task_guids:
            return []
        where.append(f"s.task_guid IN ({placeholders('guid', len(task_guids))})")
        params.update(numbered("guid", task_guids))
    sql = _MANIFESTATIONS + (" AND ".join(where) or "1 = 1") + " ORDER BY s.id"
    return [{"id": sid, "instance_id": iid, "task_guid": guid, "username": username, "printed_name": printed,
             "meaning": meaning, "signed_at": utc_iso(db.read_time(signed_at)),  # type: ignore[arg-type]
             "record_hash": record_hash}
            for sid, iid, guid, username, printed, meaning, signed_at, record_hash in db.all(sql, params)]


def manifestation(sig: Signature, username: str) -> dict[str, Any]:
    """What is shown wherever a signed record is shown: printed name, date and time with zone, meaning."""
    return {"id": sig.id, "instance_id": sig.instance_id, "task_guid": sig.task_guid, "username": username,
            "printed_name": sig.printed_name, "meaning": sig.meaning, "signed_at": utc_iso(sig.signed_at),
            "record_hash": sig.record_hash}


# -- verification -------------------------------------------------------------------------------------------
def binding_problem(sig: Signature, username: str, task: HumanTask | None, definition_hash: str | None
                    ) -> str | None:
    """Why ``sig`` no longer proves what it claims, or None."""
    record = sig.record or {}
    if record_hash(record) != sig.record_hash:
        return "its signed record does not match its hash"
    if (problem := signed_records.snapshot_problem(record)) is not None:
        return problem
    expected = {"instance_id": sig.instance_id, "task_id": sig.task_guid, "signer": username,
                "meaning": sig.meaning, "signed_at": utc_iso(sig.signed_at)}
    for key, value in expected.items():
        if record.get(key) != value:
            return f"its row says {key} = {value!r} but it signed {record.get(key)!r} (moved or altered)"
    if task is None:
        return "the task it signed no longer exists"
    if task.instance_id != sig.instance_id:
        return "the task it signed belongs to another instance"
    if task.state != TaskState.COMPLETED:
        return "the task it signed is not completed"
    if audit.normalized(task.data or {}) != record.get("data"):
        return "the task's data changed after it was signed"
    if definition_hash != record.get("definition_hash"):
        return "the instance's process definition is not the one signed"
    return None


def verify_signatures(session: Session) -> tuple[int, tuple[int, str] | None]:
    """(signatures checked, (first failing signature id, why) or None).

    Each row is checked against its own hash, its task and instance, and the ``signature.created``
    event the (already verified) audit chain holds for it, so a row rewritten with a fresh hash, a
    deleted row or a row added outside the engine is caught too.
    """
    created = {ev.object_id: ev.after or {} for ev in session.scalars(
        select(AuditEvent).where(AuditEvent.action == "signature.created",
                                 AuditEvent.object_type == "signature"))}
    checked = 0
    query = (select(Signature, User.username, HumanTask, ProcessInstance.deployment_id)
             .join(User, User.id == Signature.user_id)
             .outerjoin(HumanTask, HumanTask.task_guid == Signature.task_guid)
             .outerjoin(ProcessInstance, ProcessInstance.id == Signature.instance_id)
             .order_by(Signature.id))
    hashes: dict[int, str] = {}
    for sig, username, task, deployment_id in session.execute(query):
        checked += 1
        if deployment_id not in hashes:
            hashes[deployment_id] = session.scalar(select(Deployment.content_hash)
                                                   .where(Deployment.id == deployment_id)) or ""
        problem = binding_problem(sig, username, task, hashes[deployment_id])
        trail = created.pop(str(sig.id), None)
        if problem is None and trail is None:
            problem = "the audit trail has no signature.created event for it (added outside gmpflow)"
        elif problem is None and trail is not None and (
                trail.get("record_hash"), trail.get("instance_id"), trail.get("task_id")) != (
                sig.record_hash, sig.instance_id, sig.task_guid):
            problem = "it differs from what the audit trail recorded when it was made"
        if problem:
            return checked, (sig.id, problem)
    if created:
        missing = min(created, key=int)
        return checked, (int(missing), "the audit trail records it but the row is gone (deleted)")
    return checked, None


def verify_all(session: Session) -> ChainReport:
    """The audit chain, then every signature's record hash and binding.

    ``checked`` counts events and signatures; a broken signature gives ``first_broken`` = None and names
    the signature id in ``reason``.
    """
    chain = audit.verify_chain(session)
    if not chain.ok:
        return chain
    checked, failure = verify_signatures(session)
    if failure:
        sig_id, why = failure
        return ChainReport(False, chain.checked + checked, None, f"signature {sig_id}: {why}")
    return ChainReport(True, chain.checked + checked, None, None)
