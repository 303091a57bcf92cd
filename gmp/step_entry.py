"""The point of use: what an SOP step's perform task must pass before the operator signs it.

``sop.entry_check`` is the entry check (``engine.runtime.entry_checks``) that ``processes/sop_step`` names on
its ``perform`` task (``entry.check``). Inside the completion's transaction, before the signature:

1. every entry check of the step (``gmp.batch.check_entry``: equipment, the performer's qualification,
   and whatever is added there) — refused with its ``code`` and the field ``equipment_id`` or ``performer``;
2. each material consumed (``materials_used`` rows: material, lot, quantity, unit) against its lot and the
   step's recipe materials (``gmp.lots.check``: the reason as the code, the field as
   ``materials_used.<row>.<field>``); the tolerance is judged on the step's total of each material (a
   material split over several lots or rows adds up), and a recipe material marked ``required`` that no row
   consumes is refused (``material_not_consumed``);
3. then the consumptions themselves (``gmp.lots.consume``, each lot under a row lock, never below zero),
   which commit with the completion or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import EntryRefused
from engine.operations import CallContext, Operation
from gmp import batch, lots

if TYPE_CHECKING:
    from engine.services import Gmpflow

STEP_PROCESS = batch.STEP_PROCESS
ROW_FIELDS = {"lot_id": "lot", "material": "material", "quantity": "quantity", "uom": "unit"}


def operations(engine: Gmpflow) -> list[Operation]:
    return [Operation(
        "sop.entry_check", lambda p, c: entry_check(engine, p, c), at_entry=True, only_in=STEP_PROCESS,
        params_schema={"type": "object", "required": ["variables"],
                       "properties": {"variables": {"type": "object"}}},
        description="Before an SOP step is signed: its equipment and the performer's qualification, each lot "
                    "consumed (known, released, not expired, of a material of the step, within the recipe's "
                    "tolerance, enough left); then consumes the lots in the completion's transaction.")]


def uses_of(variables: dict[str, Any], context: CallContext) -> list[lots.Use]:
    """The ``materials_used`` rows as lot uses at ``context.at`` (a row without unit: the recipe's), each
    knowing the step's total of its material: a material split over several lots or rows is judged whole."""
    step = variables.get("step") or {}
    allowed = lots.allowed_materials(step)
    planned_units = {str(m["material"]): m.get("unit") for m in step.get("materials", [])}
    rows = [(str(row.get("material") or ""), row) for row in variables.get("materials_used") or []]
    totals: dict[str, float] = {}
    for material, row in rows:
        totals[material] = totals.get(material, 0.0) + _number(row.get("quantity"))
    return [lots.Use(lot_id=str(row.get("lot") or ""), material=material,
                     quantity=_number(row.get("quantity")),
                     uom=str(row.get("unit") or planned_units.get(material) or ""), at=context.at,
                     allowed=allowed, step_total=totals[material])
            for material, row in rows]


def _number(value: Any) -> float:
    """A row's quantity (the form made it a number; a dry run may meet anything: then 0, out of tolerance)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def refused(exc: EntryRefused, row: int) -> EntryRefused:
    """The lot's refusal, its field named as the form's row field."""
    errors = {f"materials_used.{row}.{ROW_FIELDS.get(field, field)}": message
              for field, message in exc.errors.items()}
    return EntryRefused(f"Material row {row + 1}: {exc.message}", errors=errors, code=exc.code)


def entry_check(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    variables = dict(params["variables"])
    step = variables.get("step") or {}
    checked = batch.check_entry(engine, {
        "equipment_id": variables.get("equipment_id"), "required_class": step.get("required_equipment_class"),
        "required_qualification": step.get("required_qualification"), "performer": context.actor.id,
        "batch_id": variables.get("batch_id"), "product": (variables.get("batch") or {}).get("product"),
        "step_number": step.get("number")}, context, use_equipment=False)  # only reads: see check_entry
    if not checked["ok"]:
        field = "performer" if str(checked.get("code")).startswith("qualification") else "equipment_id"
        raise EntryRefused(str(checked["reason"]), errors={field: str(checked["reason"])},
                           code=str(checked.get("code") or "entry_refused"))
    session = context.unit_of_work.session
    uses = uses_of(variables, context)
    for row, use in enumerate(uses):  # every row checked before any is consumed: the first refusal is named
        try:
            lots.check(session, use)
        except EntryRefused as exc:
            raise refused(exc, row) from None
    missing = lots.missing_required(step, uses)
    if missing is not None:
        raise missing
    consumed = []
    for row, use in enumerate(uses):
        try:
            consumed.append(lots.consume(session, context.actor, use, batch_id=variables.get("batch_id"),
                                         instance_id=context.instance_id, step=step.get("number")))
        except EntryRefused as exc:  # a lot taken by another row of this step (or concurrently) meanwhile
            raise refused(exc, row) from None
    return {**checked, "consumed": consumed}
