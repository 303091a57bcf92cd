"""The equipment logbook (table ``equipment_log``) and the check a SOP step makes before equipment is used.

Entries, append-only and sealed (each row's MAC with the audit key; ``verify_rows``):
- ``cleaned``: written only by the ``equipment_cleaning`` model's service task ``equipment.record_cleaning``
  (``only_in``, and refused for any other instance), after an operator signed **Performed** and another
  person **Verified**; who performed and who verified come from those completed tasks, not from parameters;
- ``in_use``: a batch's step was accepted on the equipment (``use``);
- ``released``: the batch's steps ended; the equipment is dirty with the batch's product (``release_batch``);
- ``maintenance`` / ``calibration``: read from the equipment's master-data versions (status, calibration
  due date) when the logbook is shown, not stored twice.

``check`` is a pure function of (session, equipment id, batch, product, now): the equipment's record in
force, its class, its calibration and its logbook. It raises ``EntryRefused`` whose code names the reason:
``equipment_required``, ``equipment_not_registered``, ``equipment_class_mismatch``,
``equipment_unavailable``, ``equipment_calibration_due``, ``equipment_in_use`` (by another batch),
``equipment_not_clean`` (never cleaned, cleaned longer ago than the class's ``clean_hold_hours``, or used
for another product since its cleaning). A batch of the same product may follow on equipment its
predecessor left dirty within the clean hold time of the last cleaning (campaign manufacturing).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.errors import Conflict, EntryRefused, NotFound, PermissionDenied
from engine.integrity import AuditKey, key_of
from engine.masterdata import effective
from engine.operations import CallContext, Operation
from engine.states import TaskState
from engine.store.models import (
    HumanTask,
    MasterDataRecord,
    MasterDataType,
    MasterDataVersion,
    ProcessInstance,
    User,
)
from gmp.tables import EquipmentLogEntry

if TYPE_CHECKING:
    from engine.services import Gmpflow

CLEANING_PROCESS = "equipment_cleaning"
BATCH_PROCESS = "sop_execution"  # its end releases the equipment its steps used
PERFORM_TASK, VERIFY_TASK = "perform_cleaning", "verify_cleaning"  # the model's signing tasks
USABLE = ("available", "in_use")
SEALED = ("equipment_id", "kind", "at", "actor_id", "actor_name", "batch_id", "product", "step",
          "instance_id", "performed_by", "verified_by", "note")


# -- sealed rows --------------------------------------------------------------------------------------------
def row_mac(key: AuditKey, values: dict[str, Any]) -> str:
    fields = [values[name] for name in SEALED]
    at = values["at"]
    fields[SEALED.index("at")] = (at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
                                  ).astimezone(timezone.utc).isoformat(timespec="microseconds")
    return key.mac(audit.canonical_json(["equipment_log", *fields]))


def _add(session: Session, actor: Actor, equipment_id: str, kind: str, at: datetime, **values: Any
         ) -> EquipmentLogEntry:
    entry = EquipmentLogEntry(equipment_id=equipment_id, kind=kind, at=at, actor_id=actor.id,
                              actor_name=actor.name, **values)
    fields = {name: getattr(entry, name) for name in SEALED}
    entry.row_mac = row_mac(key_of(session), fields)
    session.add(entry)
    session.flush()
    audit.record(session, actor, f"equipment.{kind}", "equipment", equipment_id, f"equipment {equipment_id}",
                 at=at, after={k: v for k, v in fields.items() if v is not None and k != "at"},
                 reason=values.get("note"))
    return entry


def verify_rows(session: Session) -> tuple[int, str | None]:
    """(rows checked, the id of the first row that does not match its MAC, or None)."""
    key: AuditKey = session.info["audit_key"]
    checked = 0
    for entry in session.scalars(select(EquipmentLogEntry).order_by(EquipmentLogEntry.id)):
        if entry.row_mac != row_mac(key, {name: getattr(entry, name) for name in SEALED}):
            return checked, str(entry.id)
        checked += 1
    return checked, None


# -- the logbook --------------------------------------------------------------------------------------------
def entries(session: Session, equipment_id: str) -> list[EquipmentLogEntry]:
    return list(session.scalars(select(EquipmentLogEntry)
                                .where(EquipmentLogEntry.equipment_id == equipment_id)
                                .order_by(EquipmentLogEntry.id)))


def _open_uses(found: list[EquipmentLogEntry]) -> dict[str, EquipmentLogEntry]:
    """Batch id → its ``in_use`` entry not yet followed by a ``released`` entry of that batch."""
    uses: dict[str, EquipmentLogEntry] = {}
    for entry in found:
        if entry.kind == "in_use" and entry.batch_id:
            uses.setdefault(entry.batch_id, entry)
        elif entry.kind == "released" and entry.batch_id:
            uses.pop(entry.batch_id, None)
    return uses


def clean_hold_hours(session: Session, class_code: str | None, now: datetime) -> float | None:
    """The equipment class's ``clean_hold_hours``, else the default of its schema; None: neither says."""
    version = effective.effective_at(session, "equipment_class", class_code, now) if class_code else None
    if version is not None and version.data.get("clean_hold_hours") is not None:
        return float(version.data["clean_hold_hours"])
    schema_text = session.scalar(select(MasterDataType.schema_text)
                                 .where(MasterDataType.name == "equipment_class"))
    default = (json.loads(schema_text).get("properties", {}).get("clean_hold_hours", {}).get("default")
               if schema_text else None)
    return float(default) if default is not None else None


def _refuse(code: str, message: str) -> EntryRefused:
    return EntryRefused(message, errors={"equipment_id": message}, code=code)


def check(session: Session, equipment_id: str | None, batch_id: str, product: str | None, now: datetime, *,
          required_class: str | None = None) -> dict[str, Any] | None:
    """What the step may record of the equipment (``id, class, status, calibration_due, version,
    cleaned_at, checked_at``), None when the step needs none; raises EntryRefused (see the module)."""
    equipment_id = (equipment_id or "").strip()
    if not equipment_id:
        if required_class:
            raise _refuse("equipment_required", f"This step needs equipment of class {required_class}.")
        return None
    version = effective.effective_at(session, "equipment", equipment_id, now)
    if version is None:
        raise _refuse("equipment_not_registered",
                      f"Equipment {equipment_id} is not registered (no effective record).")
    data = version.data
    if required_class and data.get("class") != required_class:
        raise _refuse("equipment_class_mismatch",
                      f"Equipment {equipment_id} is a {data.get('class')}, not a {required_class}.")
    if data.get("status") not in USABLE:
        raise _refuse("equipment_unavailable", f"Equipment {equipment_id} is {data.get('status')}.")
    due = data.get("calibration_due")
    if due and date.fromisoformat(str(due)) < now.astimezone(timezone.utc).date():
        raise _refuse("equipment_calibration_due", f"The calibration of {equipment_id} was due on {due}.")
    found = entries(session, equipment_id)
    others = {b: e for b, e in _open_uses(found).items() if b != batch_id}
    if others:
        batch, entry = next(iter(others.items()))
        raise _refuse("equipment_in_use", f"Equipment {equipment_id} is in use by batch {batch} "
                                          f"(since {entry.at.astimezone(timezone.utc).isoformat()}).")
    cleanings = [e for e in found if e.kind == "cleaned"]
    if not cleanings:
        raise _refuse("equipment_not_clean", f"Equipment {equipment_id} has no cleaning in its logbook.")
    cleaned = cleanings[-1]
    since = [e for e in found if e.id > cleaned.id and e.kind in ("in_use", "released")
             and e.batch_id != batch_id and e.product != product]
    if since:
        raise _refuse("equipment_not_clean", f"Equipment {equipment_id} was used for {since[-1].product} "
                                             f"(batch {since[-1].batch_id}) since its last cleaning.")
    hold = clean_hold_hours(session, data.get("class"), now)
    if hold is not None and now - cleaned.at > timedelta(hours=hold):
        raise _refuse("equipment_not_clean",
                      f"Equipment {equipment_id} was cleaned on {_iso(cleaned.at)}; the clean hold time of "
                      f"{hold:g} h has passed.")
    return {"id": equipment_id, "class": data.get("class"), "status": data.get("status"),
            "calibration_due": due, "version": version.number,
            "cleaned_at": cleaned.at.astimezone(timezone.utc).isoformat(),
            "checked_at": now.astimezone(timezone.utc).isoformat()}


def _lock(session: Session, equipment_id: str) -> None:
    """Serialize uses of one piece of equipment: a row lock on its master-data record (PostgreSQL)."""
    session.scalar(select(MasterDataRecord.id).where(MasterDataRecord.type_name == "equipment",
                                                     MasterDataRecord.key == equipment_id).with_for_update())


def use(session: Session, actor: Actor, equipment_id: str | None, batch_id: str, product: str | None,
        now: datetime, *, required_class: str | None = None, step: int | None = None,
        instance_id: int | None = None) -> dict[str, Any] | None:
    """``check`` under a lock, then mark the equipment in use by the batch (once: a batch already using it
    adds no entry, so a retried call is harmless)."""
    if (equipment_id or "").strip():
        _lock(session, str(equipment_id).strip())
    info = check(session, equipment_id, batch_id, product, now, required_class=required_class)
    if info is not None and batch_id not in _open_uses(entries(session, info["id"])):
        _add(session, actor, info["id"], "in_use", now, batch_id=batch_id, product=product, step=step,
             instance_id=instance_id)
    return info


def release_batch(session: Session, actor: Actor, batch_id: str, now: datetime) -> list[str]:
    """Every equipment the batch still uses gets a ``released`` entry (dirty with its product); returns their
    ids (none the second time)."""
    used = session.scalars(select(EquipmentLogEntry.equipment_id).where(
        EquipmentLogEntry.batch_id == batch_id, EquipmentLogEntry.kind == "in_use").distinct())
    released = []
    for equipment_id in sorted(used):
        entry = _open_uses(entries(session, equipment_id)).get(batch_id)
        if entry is not None:
            _add(session, actor, equipment_id, "released", now, batch_id=batch_id, product=entry.product,
                 note="batch ended: dirty until cleaned")
            released.append(equipment_id)
    return released


def record_init_cleaning(session: Session, actor: Actor, equipment_id: str, now: datetime) -> bool:
    """``gmpflow init --demo`` only: demo equipment recorded clean as of init, saying so (no signatures are
    made in anyone's name), like the demo lots stored released. False: it has a cleaning already."""
    if any(e.kind == "cleaned" for e in entries(session, equipment_id)):
        return False
    _add(session, actor, equipment_id, "cleaned", now,
         note="bootstrap demo data: recorded clean by gmpflow init, no cleaning signatures")
    return True


def state(session: Session, equipment_id: str, now: datetime) -> dict[str, Any]:
    """``clean`` / ``dirty`` / ``in_use`` / ``never_cleaned`` as the logbook says now (hold time included)."""
    found = entries(session, equipment_id)
    uses = _open_uses(found)
    if uses:
        return {"state": "in_use", "batch_id": next(iter(uses))}
    cleanings = [e for e in found if e.kind == "cleaned"]
    if not cleanings:
        return {"state": "never_cleaned", "batch_id": None}
    last = found[-1]
    if last.kind == "released":
        return {"state": "dirty", "batch_id": last.batch_id, "product": last.product}
    version = effective.effective_at(session, "equipment", equipment_id, now)
    hold = clean_hold_hours(session, version.data.get("class") if version else None, now)
    expired = hold is not None and now - cleanings[-1].at > timedelta(hours=hold)
    return {"state": "clean_hold_expired" if expired else "clean", "batch_id": None,
            "clean_until": None if hold is None else
            (cleanings[-1].at + timedelta(hours=hold)).astimezone(timezone.utc).isoformat()}


def logbook(session: Session, equipment_id: str, now: datetime) -> dict[str, Any]:
    """The equipment's record in force, its state and every entry, oldest first: the stored entries and, from
    its master-data versions, maintenance (status) and calibration (due date) changes. NotFound."""
    versions = list(session.scalars(select(MasterDataVersion).join(MasterDataRecord).where(
        MasterDataRecord.type_name == "equipment", MasterDataRecord.key == equipment_id,
        MasterDataVersion.effective_from.is_not(None)).order_by(MasterDataVersion.effective_from)))
    found = entries(session, equipment_id)
    if not versions and not found:
        raise NotFound(f"There is no equipment {equipment_id}.", code="equipment_not_found")
    lines: list[tuple[datetime, int, dict[str, Any]]] = []
    previous: dict[str, Any] = {}
    for version in versions:
        data, at = version.data, version.effective_from
        assert at is not None
        if data.get("calibration_due") != previous.get("calibration_due"):
            lines.append((at, 0, {"kind": "calibration", "at": _iso(at), "calibration_due":
                                  data.get("calibration_due"), "record_version": version.number}))
        if data.get("status") != previous.get("status") and ("maintenance" in (data.get("status"),
                                                                               previous.get("status"))):
            lines.append((at, 0, {"kind": "maintenance", "at": _iso(at), "status": data.get("status"),
                                  "record_version": version.number}))
        previous = data
    for e in found:
        lines.append((e.at, e.id, {"kind": e.kind, "at": _iso(e.at), "by": e.actor_id,
                                   "by_name": e.actor_name,
                                   "batch_id": e.batch_id, "product": e.product, "step": e.step,
                                   "instance_id": e.instance_id, "performed_by": e.performed_by,
                                   "verified_by": e.verified_by, "note": e.note}))
    current = effective.effective_at(session, "equipment", equipment_id, now)
    return {"equipment_id": equipment_id,
            "record": dict(current.data) if current is not None else None,
            **state(session, equipment_id, now),
            "entries": [line for _, _, line in sorted(lines, key=lambda item: (item[0], item[1]))]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


# -- the cleaning model's service task ----------------------------------------------------------------------
def operations(engine: Gmpflow) -> list[Operation]:
    return [Operation(
        "equipment.record_cleaning", lambda p, c: record_cleaning(engine, p, c), idempotent=True,
        only_in=CLEANING_PROCESS,
        params_schema={"type": "object", "required": ["equipment_id"], "additionalProperties": False,
                       "properties": {"equipment_id": {"type": "string"},
                                      "note": {"type": ["string", "null"]}}},
        description="Writes the 'cleaned' logbook entry of this cleaning instance's equipment, performed and "
                    "verified by whoever signed its two tasks; answers {equipment_id, cleaned_at}."),
        Operation(
        "equipment.release_batch", lambda p, c: _release(engine, p, c), idempotent=True,
        only_in=BATCH_PROCESS,
        params_schema={"type": "object", "required": ["batch_id"], "additionalProperties": False,
                       "properties": {"batch_id": {"type": "string"}}},
        description="At the end of a batch's steps: every equipment still in use by the batch is released, "
                    "dirty with its product; answers {released: [equipment ids]}.")]


def _release(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Only the batch's own ``sop_execution`` instance (business key = the batch id) releases it."""
    batch_id = str(params["batch_id"])
    with engine.db.unit_of_work() as session:
        instance = session.get(ProcessInstance, context.instance_id) if context.instance_id else None
        if instance is None or instance.process_key != BATCH_PROCESS or instance.business_key != batch_id:
            raise PermissionDenied(f"Batch {batch_id}'s equipment is released by its own execution only.",
                                   code="not_permitted")
        return {"released": release_batch(session, Actor.system(), batch_id, engine.clock.now())}


def record_cleaning(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Only for an ``equipment_cleaning`` instance whose two signing tasks are done by two people;
    idempotent for a retried job (the instance's entry exists)."""
    equipment_id, now = str(params["equipment_id"]).strip(), engine.clock.now()
    with engine.db.unit_of_work() as session:
        instance = session.get(ProcessInstance, context.instance_id) if context.instance_id else None
        if instance is None or instance.process_key != CLEANING_PROCESS:
            raise PermissionDenied(f"Cleanings are recorded by the model {CLEANING_PROCESS} only.",
                                   code="not_permitted")
        _lock(session, equipment_id)
        earlier = session.scalar(select(EquipmentLogEntry).where(EquipmentLogEntry.instance_id == instance.id,
                                                                 EquipmentLogEntry.kind == "cleaned"))
        if earlier is not None:
            return {"equipment_id": earlier.equipment_id, "cleaned_at": _iso(earlier.at), "repeated": True}
        if effective.effective_at(session, "equipment", equipment_id, now) is None:
            raise NotFound(f"Equipment {equipment_id} is not registered (no effective record).",
                           code="equipment_not_registered")
        uses = _open_uses(entries(session, equipment_id))
        if uses:
            raise Conflict(f"Equipment {equipment_id} is in use by batch {next(iter(uses))}; it is cleaned "
                           "after the batch released it.", code="equipment_in_use")
        done = {t.element_id: t for t in session.scalars(select(HumanTask).where(
            HumanTask.instance_id == instance.id, HumanTask.state == TaskState.COMPLETED,
            HumanTask.element_id.in_((PERFORM_TASK, VERIFY_TASK))).order_by(HumanTask.id))}
        performer, verifier = done.get(PERFORM_TASK), done.get(VERIFY_TASK)
        if performer is None or verifier is None or performer.completed_by == verifier.completed_by:
            raise PermissionDenied("A cleaning is recorded once one person performed it and another verified "
                                   "it.", code="not_permitted")
        name = session.scalar(select(User.full_name).where(User.username == verifier.completed_by))
        entry = _add(session, Actor(str(verifier.completed_by), str(name or verifier.completed_by)),
                     equipment_id, "cleaned", verifier.completed_at or now, instance_id=instance.id,
                     performed_by=performer.completed_by, verified_by=verifier.completed_by,
                     note=params.get("note"))
        return {"equipment_id": equipment_id, "cleaned_at": _iso(entry.at)}
