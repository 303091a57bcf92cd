"""What the EBR step screen offers and checks as the operator types (issue 15.3): the pick lists of an SOP
step (equipment of the required class, released lots of each recipe material) and a dry run of the step's
entry — the same checks as ``gmp.step_entry`` before the signature, each row on its own, nothing
consumed or stored — plus the values outside their limits, flagged before the signing dialog opens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.errors import EntryRefused
from engine.masterdata import effective
from engine.operations import CallContext
from engine.store.models import MasterDataRecord
from gmp import batch, lots, step_entry
from gmp.states import LotStatus

if TYPE_CHECKING:
    from engine.services import Gmpflow


def options(engine: Gmpflow, step: dict[str, Any]) -> dict[str, Any]:
    """``{equipment: [{id, status, calibration_due}], lots: {material: [{lot_id, available, uom, expiry}]}}``:
    the equipment in force of the step's class (all equipment when it names none) and the released lots, not
    expired today, of each recipe material of the step."""
    now = engine.clock.now()
    required = step.get("required_equipment_class")
    with engine.db.read() as session:
        equipment = []
        keys = session.scalars(select(MasterDataRecord.key).where(MasterDataRecord.type_name == "equipment")
                               .order_by(MasterDataRecord.key)).all()
        for key in keys:
            version = effective.effective_at(session, "equipment", key, now)
            if version is not None and (not required or version.data.get("class") == required):
                equipment.append({"id": key, "status": version.data.get("status"),
                                  "calibration_due": version.data.get("calibration_due")})
        today = now.date()
        found = {str(m["material"]): [
            {k: lot[k] for k in ("lot_id", "available", "uom", "expiry")}
            for lot in lots.listing(session, today, str(m["material"]), LotStatus.RELEASED.value)
            if lot["available"] > 0] for m in step.get("materials", [])}
    return {"equipment": equipment, "lots": found}


def out_of_limit(step: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
    entered = {v.get("name"): v.get("value") for v in data.get("values") or [] if isinstance(v, dict)}
    found = []
    for p in step.get("parameters", []):
        value = entered.get(p["name"])
        low, high = p.get("low"), p.get("high")
        if isinstance(value, int | float) and not isinstance(value, bool) and (
                (low is not None and value < low) or (high is not None and value > high)):
            found.append({"name": p["name"], "value": value, "unit": p.get("unit"), "low": p.get("low"),
                          "high": p.get("high"), "target": p.get("target")})
    return found


def preview(engine: Gmpflow, step: dict[str, Any], data: dict[str, Any], performer: str, *,
            batch_id: str | None = None, product: str | None = None) -> dict[str, Any]:
    """``{ok, errors: {field: message}, codes: {field: code}, out_of_limit}``: every refusal the entry would
    meet now (the entry checks, then each material row on its own). Reads only."""
    if not all(isinstance(data.get(key) or [], list) for key in ("materials_used", "values")):
        return {"ok": False, "errors": {"data": "values and materials_used are lists"}, "codes": {},
                "out_of_limit": []}
    errors: dict[str, str] = {}
    codes: dict[str, str] = {}
    context = CallContext(idempotency_key="preview", instance_id=None, attempt=1, at=engine.clock.now())
    if data.get("equipment_id") or step.get("required_equipment_class") or step.get("required_qualification"):
        checked = batch.check_entry(engine, {
            "equipment_id": data.get("equipment_id"), "required_class": step.get("required_equipment_class"),
            "required_qualification": step.get("required_qualification"), "performer": performer,
            "batch_id": batch_id, "product": product}, context, use_equipment=False)
        if not checked["ok"]:
            field = "performer" if str(checked.get("code")).startswith("qualification") else "equipment_id"
            errors[field], codes[field] = str(checked["reason"]), str(checked.get("code"))
    rows = [r if isinstance(r, dict) else {} for r in data.get("materials_used") or []]
    uses = step_entry.uses_of({"step": step, "materials_used": rows}, context)
    with engine.db.read() as session:
        for row, use in enumerate(uses):
            if not use.lot_id:
                continue  # not picked yet
            try:
                lots.check(session, use)
            except EntryRefused as exc:
                refused = step_entry.refused(exc, row)
                errors.update(refused.errors)
                codes.update({field: refused.code for field in refused.errors})
    return {"ok": not errors, "errors": errors, "codes": codes, "out_of_limit": out_of_limit(step, data)}
