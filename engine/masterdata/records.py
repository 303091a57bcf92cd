"""Records and their versions: create with a first draft, new drafts, edit a draft, submit for review.

Every write validates the data against the latest version of the record's type and checks its
references, then writes one audit event (object ``masterdata_record``, the record id) in the same
transaction. A version's data is frozen once it leaves ``draft``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.clock import Clock
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.masterdata import types, validation
from engine.masterdata.validation import Reference
from engine.states import MasterDataStatus, check_transition
from engine.store.models import MasterDataRecord, MasterDataType, MasterDataVersion

OPEN = (MasterDataStatus.DRAFT, MasterDataStatus.IN_REVIEW)


def label(record: MasterDataRecord, number: int | None = None) -> str:
    return f"{record.type_name} {record.key}" + (f" v{number}" if number else "")


def content_hash(record: MasterDataRecord, data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of type, key and data: what a change request's signatures bind to."""
    return audit.sha256_hex(audit.canonical_json({"type": record.type_name, "key": record.key, "data": data}))


def summary(version: MasterDataVersion) -> dict[str, Any]:
    """What the audit trail keeps of a version."""
    return {"number": version.number, "status": version.status, "content_hash": version.content_hash,
            "data": version.data, "effective_from": version.effective_from,
            "effective_until": version.effective_until}


def checked(type_row: MasterDataType, key: str, data: Any) -> list[Reference]:
    """The data's references; raises ValidationFailed with per-field errors (JSON pointers)."""
    errors, references = validation.check(types.schema_of(type_row), data, key)
    if errors:
        raise ValidationFailed(f"The {type_row.name} data does not fit its schema.", errors=errors,
                               code="masterdata_invalid")
    return references


def check_references(session: Session, type_name: str, references: list[Reference]) -> None:
    errors = validation.unknown_references(session, references)
    if errors:
        raise ValidationFailed(f"The {type_name} data refers to records that do not exist.", errors=errors,
                               code="masterdata_unknown_reference")


# -- reads ------------------------------------------------------------------------------------------------
def get_record(session: Session, type_name: str, key: str, *, lock: bool = False) -> MasterDataRecord:
    query = select(MasterDataRecord).where(MasterDataRecord.type_name == type_name,
                                           MasterDataRecord.key == key)
    record = session.scalars(query.with_for_update() if lock else query).first()
    if record is None:
        types.current(session, type_name)  # an unknown type says so
        raise NotFound(f"There is no {type_name} record '{key}'.", code="masterdata_record_not_found")
    return record


def versions_of(session: Session, record_id: int) -> list[MasterDataVersion]:
    return list(session.scalars(select(MasterDataVersion).where(MasterDataVersion.record_id == record_id)
                                .order_by(MasterDataVersion.number)))


def get_version(session: Session, type_name: str, key: str, number: int, *, lock: bool = False
                ) -> MasterDataVersion:
    query = (select(MasterDataVersion)
             .join(MasterDataRecord, MasterDataVersion.record_id == MasterDataRecord.id)
             .where(MasterDataRecord.type_name == type_name, MasterDataRecord.key == key,
                    MasterDataVersion.number == number))
    version = session.scalars(query.with_for_update(of=MasterDataVersion) if lock else query).first()
    if version is None:
        get_record(session, type_name, key)
        raise NotFound(f"{type_name} '{key}' has no version {number}.", code="masterdata_version_not_found")
    return version


def list_records(session: Session, type_name: str) -> list[tuple[MasterDataRecord, list[MasterDataVersion]]]:
    """The type's records by key, each with its versions (oldest first), in two queries."""
    types.current(session, type_name)
    records = list(session.scalars(select(MasterDataRecord).where(MasterDataRecord.type_name == type_name)
                                   .order_by(MasterDataRecord.key)))
    by_record: dict[int, list[MasterDataVersion]] = {r.id: [] for r in records}
    if records:
        for version in session.scalars(select(MasterDataVersion)
                                       .where(MasterDataVersion.record_id.in_(by_record))
                                       .order_by(MasterDataVersion.number)):
            by_record[version.record_id].append(version)
    return [(r, by_record[r.id]) for r in records]


# -- writes -----------------------------------------------------------------------------------------------
def create_record(session: Session, clock: Clock, actor: Actor, type_name: str, key: str, title: str,
                  data: Any, *, check_refs: bool = True, reason: str | None = None) -> MasterDataVersion:
    """A new record with version 1 as a draft. ``check_refs=False`` leaves references to the caller
    (an import checks them once every record of the file is in). ``clock``: a request's is stopped at its
    time (``RequestContext.clock``), so the record, its version and the event carry one time."""
    type_row = types.current(session, type_name)
    if session.scalar(select(MasterDataRecord.id).where(MasterDataRecord.type_name == type_name,
                                                        MasterDataRecord.key == key)) is not None:
        raise Conflict(f"There is already a {type_name} record '{key}'; create a new draft of it instead.",
                       code="masterdata_record_exists")
    references = checked(type_row, key, data)
    if check_refs:
        check_references(session, type_name, references)
    now = clock.now()
    record = MasterDataRecord(type_name=type_name, key=key, title=title, created_at=now, created_by=actor.id)
    session.add(record)
    session.flush()
    version = _add_version(session, now, actor, record, type_row, 1, data)
    audit.record(session, actor, "masterdata.record_created", "masterdata_record", record.id,
                 label(record, 1), at=now, after={"title": title, **summary(version)}, reason=reason)
    return version


def new_draft(session: Session, clock: Clock, actor: Actor, type_name: str, key: str, data: Any = None, *,
              check_refs: bool = True, reason: str | None = None) -> MasterDataVersion:
    """The record's next version as a draft; ``data`` None copies the latest version's data.

    Conflict ``masterdata_open_version_exists`` while another version is a draft or in review.
    """
    record = get_record(session, type_name, key, lock=True)
    existing = versions_of(session, record.id)
    open_version = next((v for v in existing if v.status in OPEN), None)
    if open_version is not None:
        raise Conflict(f"{label(record)} already has version {open_version.number} {open_version.status}; "
                       "finish or withdraw it first.", code="masterdata_open_version_exists",
                       number=open_version.number)
    data = existing[-1].data if data is None else data
    type_row = types.current(session, type_name)
    references = checked(type_row, key, data)
    if check_refs:
        check_references(session, type_name, references)
    now = clock.now()
    version = _add_version(session, now, actor, record, type_row, existing[-1].number + 1, data)
    audit.record(session, actor, "masterdata.draft_created", "masterdata_record", record.id,
                 label(record, version.number), at=now, after=summary(version), reason=reason)
    return version


def update_draft(session: Session, clock: Clock, actor: Actor, type_name: str, key: str, number: int,
                 data: Any, *, reason: str | None = None) -> MasterDataVersion:
    """Replace a draft's data. Conflict ``masterdata_version_immutable`` once it has left ``draft``."""
    version = get_version(session, type_name, key, number, lock=True)
    if version.status != MasterDataStatus.DRAFT:
        raise Conflict(f"{label(version.record, number)} is {version.status}; only a draft can be changed. "
                       "Create a new draft instead.", code="masterdata_version_immutable",
                       current=version.status)
    type_row = types.current(session, type_name)
    check_references(session, type_name, checked(type_row, key, data))
    before = summary(version)
    version.data, version.type_id = data, type_row.id
    version.content_hash = content_hash(version.record, data)
    version.changed_at, version.changed_by = clock.now(), actor.id
    audit.record(session, actor, "masterdata.draft_updated", "masterdata_record", version.record_id,
                 label(version.record, number), at=version.changed_at, before=before, after=summary(version),
                 reason=reason)
    return version


def submit(session: Session, clock: Clock, actor: Actor, type_name: str, key: str, number: int, *,
           reason: str | None = None) -> MasterDataVersion:
    """Draft → in review: from here on the data is frozen. It is checked again (schema and references)."""
    version = get_version(session, type_name, key, number, lock=True)
    check_transition(version.status, MasterDataStatus.IN_REVIEW, "masterdata_version")
    type_row = types.current(session, type_name)
    check_references(session, type_name, checked(type_row, key, version.data))
    return set_status(session, clock, actor, version, MasterDataStatus.IN_REVIEW,
                      "masterdata.version_submitted", reason)


def set_status(session: Session, clock: Clock, actor: Actor, version: MasterDataVersion,
               status: MasterDataStatus, action: str, reason: str | None = None) -> MasterDataVersion:
    check_transition(version.status, status, "masterdata_version")
    before = {"status": version.status}
    version.status = status
    version.changed_at, version.changed_by = clock.now(), actor.id
    session.flush()  # the partial unique indexes see each status change in order
    audit.record(session, actor, action, "masterdata_record", version.record_id,
                 label(version.record, version.number), at=version.changed_at, before=before,
                 after={"status": status, "content_hash": version.content_hash,
                        "effective_from": version.effective_from, "effective_until": version.effective_until,
                        "change_request_instance_id": version.change_request_instance_id}, reason=reason)
    return version


def _add_version(session: Session, now: Any, actor: Actor, record: MasterDataRecord, type_row: MasterDataType,
                 number: int, data: Any) -> MasterDataVersion:
    version = MasterDataVersion(record_id=record.id, record=record, number=number,
                                status=MasterDataStatus.DRAFT, type_id=type_row.id, data=data,
                                content_hash=content_hash(record, data),
                                created_at=now, created_by=actor.id, changed_at=now, changed_by=actor.id)
    session.add(version)
    session.flush()
    return version
