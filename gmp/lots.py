"""Material lots: received in quarantine, dispositioned only by the ``lot_disposition`` model, checked at the
point of use and consumed by batch steps (``processes/lot_disposition``).

- A lot is created (``create``) in ``quarantine`` by one of ``CREATORS``, in the same transaction as the
  ``lot_disposition`` instance the engine starts for it (business key = the lot id, the engine's identity).
  The lot remembers that instance: ``lot.set_status`` — the model's service task, callable from that process
  only (``only_in``) — changes the status for it alone, after QA signed **Released** or **Rejected**. No other
  code path writes ``lot.status``; there is no REST route for it.
- ``expired`` is read, not stored: a released lot whose expiry date is before the day it is read at.
- ``check_consumption`` refuses a use with the reason as the problem code (``EntryRefused``); ``consume``
  checks again under a row lock and takes the quantity off ``available`` (never below zero), recording the
  consumption (lot, batch, step instance, step, quantity, who, when): the genealogy's edges.
Every write has its audit event in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.authority import NotPermitted
from engine.errors import Conflict, EntryRefused, NotFound, PermissionDenied, UndeclaredField
from engine.operations import CallContext, Operation
from engine.states import TaskState
from engine.store.models import HumanTask, User
from gmp.states import LOT_DISPOSITIONS, LotStatus
from gmp.tables import Lot, LotEvent

if TYPE_CHECKING:
    from engine.identity import Principal
    from engine.services import Gmpflow

PROCESS = "lot_disposition"
DECIDE_TASK = "decide"  # the QA user task of the model whose completer is recorded as the decider
CREATORS = frozenset({"integration", "qa", "admin", "supervisor"})  # goods receipt: ERP, QA, the shop floor
FIELDS = ("lot_id", "material", "quantity", "uom", "expiry", "retest", "supplier_lot")
REQUIRED = ("lot_id", "material", "quantity", "uom", "expiry")
DEFAULT_TOLERANCE_PCT = 5.0
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")  # a path segment of /lots/{lot_id}


def status_at(lot: Lot, today: date) -> str:
    """The status as read on ``today``: a released lot past its expiry date reads ``expired``."""
    if lot.status == LotStatus.RELEASED and date.fromisoformat(lot.expiry) < today:
        return LotStatus.EXPIRED.value
    return lot.status


def _today(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


def _date(value: Any, field: str, errors: dict[str, str]) -> str | None:
    """An ISO date ``YYYY-MM-DD`` as given, or None (absent, or wrong: then ``errors[field]`` says so)."""
    if value is None:
        return None
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    errors[field] = "must be a date YYYY-MM-DD"
    return None


def validated(data: dict[str, Any]) -> dict[str, Any]:
    """The new lot's fields, checked; raises UndeclaredField (other keys) or EntryRefused ``lot_invalid``
    with one message per field."""
    extra = sorted(set(data) - set(FIELDS))
    if extra:
        raise UndeclaredField(f"A lot has no field {', '.join(extra)}.", fields=extra)
    errors: dict[str, str] = {}
    for field in REQUIRED:
        if data.get(field) in (None, ""):
            errors[field] = "required"
    lot_id, material, uom = data.get("lot_id"), data.get("material"), data.get("uom")
    if "lot_id" not in errors and not (isinstance(lot_id, str) and _ID.match(lot_id)):
        errors["lot_id"] = "1-100 of letters, digits, '_', '.', '-', starting with a letter or digit"
    for field, value, limit in (("material", material, 50), ("uom", uom, 20),
                                ("supplier_lot", data.get("supplier_lot"), 100)):
        if field not in errors and value is not None and not (
                isinstance(value, str) and re.search(r"\S", value) and len(value) <= limit):
            errors[field] = f"must be text of 1-{limit} characters"
    quantity = data.get("quantity")
    if "quantity" not in errors and (isinstance(quantity, bool) or not isinstance(quantity, int | float)
                                     or not 0 < quantity < 1e12):
        errors["quantity"] = "must be a number greater than 0"
    expiry = _date(data.get("expiry"), "expiry", errors) if "expiry" not in errors else None
    retest = _date(data.get("retest"), "retest", errors)
    if errors:
        raise EntryRefused("The lot is invalid: " + "; ".join(f"{k} {v}" for k, v in errors.items()) + ".",
                           errors=errors, code="lot_invalid")
    return {"lot_id": lot_id, "material": material, "quantity": float(quantity), "uom": uom,  # type: ignore
            "expiry": expiry, "retest": retest, "supplier_lot": data.get("supplier_lot")}


def check_creator(principal: Principal, lot_id: Any) -> None:
    """NotPermitted (audited by ``authority.refusals``) unless the principal holds a role of ``CREATORS``."""
    if not principal.roles & CREATORS:
        raise NotPermitted(f"Lots are received by the roles {', '.join(sorted(CREATORS))}.",
                           action="lot.create_refused", object_type="lot", object_id=str(lot_id)[:100],
                           after={"roles": sorted(principal.roles)})


def insert(session: Session, actor: Actor, fields: dict[str, Any], now: datetime, *,
           status: LotStatus = LotStatus.QUARANTINE, reason: str | None = None) -> Lot:
    """Store a new lot and its ``created`` history; Conflict ``lot_exists`` for a known id. Only ``init``'s
    demo data passes another ``status`` (and says why in ``reason``)."""
    if session.get(Lot, fields["lot_id"]) is not None:
        raise Conflict(f"Lot {fields['lot_id']} exists already.", code="lot_exists")
    lot = Lot(**fields, available=fields["quantity"], status=status.value, created_at=now,
              created_by=actor.id)
    session.add(lot)
    session.add(LotEvent(lot_id=lot.lot_id, kind="created", at=now, actor_id=actor.id, actor_name=actor.name,
                         to_status=status.value, quantity=lot.quantity, uom=lot.uom, reason=reason))
    session.flush()
    audit.record(session, actor, "lot.created", "lot", lot.lot_id, f"lot {lot.lot_id} ({lot.material})",
                 at=now, after={**fields, "status": status.value}, reason=reason)
    return lot


def view(lot: Lot, today: date, history: list[LotEvent] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "lot_id": lot.lot_id, "material": lot.material, "quantity": lot.quantity, "uom": lot.uom,
        "available": lot.available, "expiry": lot.expiry, "retest": lot.retest,
        "supplier_lot": lot.supplier_lot,
        "status": status_at(lot, today), "disposition_instance_id": lot.disposition_instance_id,
        "created_at": lot.created_at.isoformat(), "created_by": lot.created_by}
    if history is not None:
        out["history"] = [{"kind": e.kind, "at": e.at.isoformat(), "by": e.actor_id, "by_name": e.actor_name,
                           "from_status": e.from_status, "to_status": e.to_status, "quantity": e.quantity,
                           "uom": e.uom, "batch_id": e.batch_id, "instance_id": e.instance_id, "step": e.step,
                           "reason": e.reason} for e in history]
    return out


def history(session: Session, lot_id: str) -> list[LotEvent]:
    return list(session.scalars(select(LotEvent).where(LotEvent.lot_id == lot_id).order_by(LotEvent.id)))


def listing(session: Session, today: date, material: str | None, status: str | None) -> list[dict[str, Any]]:
    """Lots by id; ``status`` filters on the status as read today (``expired`` included)."""
    query = select(Lot).order_by(Lot.lot_id)
    if material:
        query = query.where(Lot.material == material)
    if status in (LotStatus.RELEASED, LotStatus.EXPIRED):
        query = query.where(Lot.status == LotStatus.RELEASED)
    elif status:
        query = query.where(Lot.status == status)
    found = [view(lot, today) for lot in session.scalars(query)]
    return [lot for lot in found if status is None or lot["status"] == status]


# -- the point of use --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Use:
    """One intended consumption: ``allowed`` maps the step's recipe materials to (planned quantity,
    tolerance in %). ``step_total``: what the whole step takes of this material (several lots, or one lot in
    several rows); the tolerance is judged on it. None: this use alone is the step's consumption."""

    lot_id: str
    material: str
    quantity: float
    uom: str
    at: datetime
    allowed: dict[str, tuple[float, float]]
    step_total: float | None = None


def _refuse(code: str, field: str, message: str) -> EntryRefused:
    return EntryRefused(message, errors={field: message}, code=code)


def check(session: Session, use: Use, *, lock: bool = False) -> Lot:
    """The lot if ``use`` is allowed; else EntryRefused whose code names the first reason found:
    ``lot_unknown``, ``lot_material_mismatch``, ``material_not_in_step``, ``lot_not_released``,
    ``lot_expired``, ``uom_mismatch``, ``quantity_out_of_tolerance`` (the step's total of the material, or a
    row of nothing), ``lot_insufficient``."""
    query = select(Lot).where(Lot.lot_id == use.lot_id)
    lot = session.scalar(query.with_for_update() if lock else query)
    if lot is None:
        raise _refuse("lot_unknown", "lot_id", f"There is no lot {use.lot_id}.")
    if lot.material != use.material:
        raise _refuse("lot_material_mismatch", "lot_id",
                      f"Lot {lot.lot_id} is {lot.material}, not {use.material}.")
    if use.material not in use.allowed:
        raise _refuse("material_not_in_step", "material",
                      f"{use.material} is not a material of this step "
                      f"({', '.join(sorted(use.allowed)) or 'none'}).")
    if lot.status != LotStatus.RELEASED:
        raise _refuse("lot_not_released", "lot_id", f"Lot {lot.lot_id} is {lot.status}, not released.")
    if date.fromisoformat(lot.expiry) < _today(use.at):
        raise _refuse("lot_expired", "lot_id", f"Lot {lot.lot_id} expired on {lot.expiry}.")
    if use.uom != lot.uom:
        raise _refuse("uom_mismatch", "uom", f"Lot {lot.lot_id} is counted in {lot.uom}, not {use.uom}.")
    planned, tolerance = use.allowed[use.material]
    low, high = planned * (1 - tolerance / 100), planned * (1 + tolerance / 100)
    judged = use.quantity if use.step_total is None else use.step_total
    if use.quantity <= 0 or not low - 1e-9 <= judged <= high + 1e-9:
        what = (f"{use.quantity} {use.uom}" if use.step_total is None
                else f"{round(judged, 6)} {use.uom} of {use.material} in all this step's rows")
        raise _refuse("quantity_out_of_tolerance", "quantity",
                      f"{what} is outside {planned} {use.uom} ± {tolerance} % "
                      f"({round(low, 6)}-{round(high, 6)}).")
    if use.quantity > lot.available + 1e-9:
        raise _refuse("lot_insufficient", "quantity",
                      f"Lot {lot.lot_id} has {lot.available} {lot.uom} left, not {use.quantity}.")
    return lot


def consume(session: Session, actor: Actor, use: Use, *, batch_id: str | None, instance_id: int | None,
            step: int | None) -> dict[str, Any]:
    """Check ``use`` under a row lock and take its quantity off the lot (never below zero)."""
    lot = check(session, use, lock=True)
    before = lot.available
    lot.available = max(0.0, round(lot.available - use.quantity, 6))
    session.add(LotEvent(lot_id=lot.lot_id, kind="consumed", at=use.at, actor_id=actor.id,
                         actor_name=actor.name,
                         quantity=use.quantity, uom=use.uom, batch_id=batch_id, instance_id=instance_id,
                         step=step))
    audit.record(session, actor, "lot.consumed", "lot", lot.lot_id, f"lot {lot.lot_id} ({lot.material})",
                 at=use.at, before={"available": before},
                 after={"available": lot.available, "quantity": use.quantity, "uom": use.uom,
                        "batch_id": batch_id, "instance_id": instance_id, "step": step})
    return {"lot_id": lot.lot_id, "consumed": use.quantity, "available": lot.available}


def record_refusal(session: Session, actor: Actor, use: Use, error: EntryRefused, *, batch_id: str | None,
                   instance_id: int | None, step: int | None) -> None:
    """A refused attempt stays visible: an audit event (its own unit of work; the attempt's rolled back)."""
    audit.record(session, actor, "lot.consumption_refused", "lot", use.lot_id, f"lot {use.lot_id}", at=use.at,
                 after={"code": error.code, "material": use.material, "quantity": use.quantity,
                        "uom": use.uom,
                        "batch_id": batch_id, "instance_id": instance_id, "step": step},
                 reason=error.message)


def missing_required(step: dict[str, Any], uses: list[Use]) -> EntryRefused | None:
    """The refusal for the step's first recipe material marked ``required`` that no row consumes, or None."""
    taken = {use.material for use in uses if use.quantity > 0}
    for material in step.get("materials", []):
        if material.get("required") and str(material["material"]) not in taken:
            return _refuse("material_not_consumed", "materials_used",
                           f"{material['material']} ({material['quantity']} {material['unit']}) is a "
                           "required "
                           "material of this step and no lot of it was consumed.")
    return None


def allowed_materials(step: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """A recipe step's materials as ``check`` takes them (``tolerance_pct`` default 5 %)."""
    return {str(m["material"]): (float(m["quantity"]), float(m.get("tolerance_pct", DEFAULT_TOLERANCE_PCT)))
            for m in step.get("materials", [])}


# -- the disposition, called by the model's service task only -------------------------------------------
def operations(engine: Gmpflow) -> list[Operation]:
    return [Operation(
        "lot.set_status", lambda p, c: set_status(engine, p, c), idempotent=True, only_in=PROCESS,
        params_schema={"type": "object", "required": ["lot_id", "status"], "additionalProperties": False,
                       "properties": {"lot_id": {"type": "string"},
                                      "status": {"enum": [LotStatus.RELEASED.value,
                                                          LotStatus.REJECTED.value]},
                                      "reason": {"type": ["string", "null"]}}},
        description="Sets the status a QA signature decided in this lot's own disposition instance "
                    "(released or rejected); answers {lot_id, status}.")]


def set_status(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Only for the instance the lot's creation started; idempotent for a retried job (same status)."""
    target, now = LotStatus(params["status"]), engine.clock.now()
    with engine.db.unit_of_work() as session:
        lot = session.scalar(select(Lot).where(Lot.lot_id == params["lot_id"]).with_for_update())
        if lot is None:
            raise NotFound(f"There is no lot {params['lot_id']}.", code="lot_unknown")
        if context.instance_id is None or lot.disposition_instance_id != context.instance_id:
            raise PermissionDenied(f"Lot {lot.lot_id} is dispositioned by instance "
                                   f"{lot.disposition_instance_id} only.", code="not_permitted")
        if lot.status == target:
            return {"lot_id": lot.lot_id, "status": lot.status, "repeated": True}
        if target not in LOT_DISPOSITIONS.get(LotStatus(lot.status), frozenset()):
            raise Conflict(f"Lot {lot.lot_id} is {lot.status}; it cannot become {target}.",
                           code="lot_status_conflict")
        decider = session.execute(select(HumanTask.completed_by, User.full_name).join(
            User, User.username == HumanTask.completed_by).where(
            HumanTask.instance_id == context.instance_id, HumanTask.element_id == DECIDE_TASK,
            HumanTask.state == TaskState.COMPLETED).order_by(HumanTask.id.desc()).limit(1)).first()
        actor = Actor(str(decider[0]), str(decider[1])) if decider else Actor.system()
        before, lot.status = lot.status, target.value
        session.add(LotEvent(lot_id=lot.lot_id, kind="status", at=now, actor_id=actor.id,
                             actor_name=actor.name,
                             from_status=before, to_status=target.value, instance_id=context.instance_id,
                             reason=params.get("reason")))
        audit.record(session, actor, "lot.status_changed", "lot", lot.lot_id,
                     f"lot {lot.lot_id} ({lot.material})",
                     at=now, before={"status": before},
                     after={"status": target.value, "instance_id": context.instance_id},
                     reason=params.get("reason"))
        return {"lot_id": lot.lot_id, "status": target.value}
