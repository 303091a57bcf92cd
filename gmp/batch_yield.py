"""Yield and material reconciliation of a batch (21 CFR 211.103, 211.188(b)(7)), shown with its calculation in
the batch record.

- Yield: the actual quantity the operator recorded (``record_yield``: ``produced_quantity``) against the
  theoretical yield of the recipe (``theoretical_yield``; without one, the order's planned quantity), in %;
  outside the recipe's ``yield_limits`` (``low_pct``/``high_pct``) it is an exception ``yield_out_of_limits``.
- Reconciliation, per material: issued − consumed − returned − waste = the unaccounted balance. Consumed is
  what the batch's steps took from lots (``lot_event`` rows ``consumed`` of the batch); issued, returned and
  waste the operator enters on the yield form (``reconciliation``). A balance beyond the recipe's
  ``reconciliation_tolerance_pct`` of the issued quantity (schema default) is an exception
  ``reconciliation_out_of_tolerance``; a material consumed or listed by the recipe but not reconciled on the
  form is shown as not reconciled.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.models import MasterDataType, MasterDataVersion
from gmp.tables import Lot, LotEvent

EXCEPTION_KINDS = ("yield_out_of_limits", "reconciliation_out_of_tolerance")


def consumed_by_batch(session: Session, batch_id: str) -> dict[str, tuple[float, str | None]]:
    """Material → (quantity, unit) the batch's steps consumed from lots."""
    rows = session.execute(select(Lot.material, LotEvent.uom, func.sum(LotEvent.quantity))
                           .join(Lot, Lot.lot_id == LotEvent.lot_id)
                           .where(LotEvent.batch_id == batch_id, LotEvent.kind == "consumed")
                           .group_by(Lot.material, LotEvent.uom))
    found: dict[str, tuple[float, str | None]] = {}
    for material, uom, quantity in rows:
        before = found.get(material, (0.0, uom))[0]
        found[material] = (round(before + float(quantity or 0), 6), uom)
    return found


def _schema_default(session: Session, recipe: MasterDataVersion, name: str) -> Any:
    schema = json.loads(session.get_one(MasterDataType, recipe.type_id).schema_text)
    return schema.get("properties", {}).get(name, {}).get("default")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def calculate(session: Session, batch_id: str, recipe: MasterDataVersion | None, order: dict[str, Any],
              yield_data: dict[str, Any] | None) -> dict[str, Any]:
    """``{yield, reconciliation}`` with every figure of the calculation; ``yield.actual`` is None until the
    yield is recorded."""
    data = recipe.data if recipe is not None else {}
    theoretical = data.get("theoretical_yield") or {}
    theory = _number(theoretical.get("quantity"))
    source = "recipe" if theory is not None else "order"
    if theory is None:
        theory = _number(order.get("quantity"))
    actual = _number((yield_data or {}).get("produced_quantity"))
    limits = data.get("yield_limits") or {}
    pct = round(actual / theory * 100, 3) if actual is not None and theory else None
    low, high = _number(limits.get("low_pct")), _number(limits.get("high_pct"))
    within = None if pct is None or (low is None and high is None) else \
        (low is None or pct >= low) and (high is None or pct <= high)
    tolerance = data.get("reconciliation_tolerance_pct")
    if tolerance is None and recipe is not None:
        tolerance = _schema_default(session, recipe, "reconciliation_tolerance_pct")
    tolerance = _number(tolerance)

    consumed = consumed_by_batch(session, batch_id)
    planned: dict[str, str | None] = {}
    for step in data.get("steps", []):
        for material in step.get("materials", []):
            planned.setdefault(str(material["material"]), material.get("unit"))
    entered = {str(row.get("material")): row for row in (yield_data or {}).get("reconciliation") or []
               if isinstance(row, dict) and row.get("material")}
    lines = []
    for material in sorted(set(planned) | set(consumed) | set(entered)):
        row = entered.get(material)
        used, uom = consumed.get(material, (0.0, planned.get(material)))
        line: dict[str, Any] = {"material": material, "unit": uom or planned.get(material), "consumed": used,
                                "issued": None, "returned": None, "waste": None, "balance": None,
                                "balance_pct": None, "reconciled": row is not None, "within_tolerance": None}
        if row is not None:
            issued = _number(row.get("issued")) or 0.0
            returned, waste = _number(row.get("returned")) or 0.0, _number(row.get("waste")) or 0.0
            balance = round(issued - used - returned - waste, 6) + 0.0  # never -0.0
            balance_pct = round(abs(balance) / issued * 100, 3) if issued else (0.0 if not balance else None)
            line.update(issued=issued, returned=returned, waste=waste, balance=balance,
                        balance_pct=balance_pct,
                        within_tolerance=(balance_pct is not None and
                                          (tolerance is None or balance_pct <= tolerance + 1e-9)))
        lines.append(line)
    return {"yield": {"theoretical": theory, "theoretical_source": source,
                      "unit": theoretical.get("unit") or order.get("unit"), "actual": actual,
                      "yield_pct": pct,
                      "low_pct": low, "high_pct": high, "within_limits": within},
            "reconciliation": {"tolerance_pct": tolerance, "materials": lines}}


def exceptions(calculated: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's exception entries of the calculation (see ``EXCEPTION_KINDS``)."""
    found = []
    y = calculated["yield"]
    if y["within_limits"] is False:
        found.append({"kind": "yield_out_of_limits", "step": None,
                      "text": f"yield {y['actual']:g} of {y['theoretical']:g} = {y['yield_pct']:g} % is "
                              "outside "
                              f"{y['low_pct'] if y['low_pct'] is not None else '-'}–"
                              f"{y['high_pct'] if y['high_pct'] is not None else '-'} %"})
    tolerance = calculated["reconciliation"]["tolerance_pct"]
    for line in calculated["reconciliation"]["materials"]:
        if line["within_tolerance"] is False:
            share = "" if line["balance_pct"] is None else format(line["balance_pct"], "g")
            found.append({"kind": "reconciliation_out_of_tolerance", "step": None,
                          "material": line["material"],
                          "text": f"{line['material']}: issued {line['issued']:g} − consumed "
                                  f"{line['consumed']:g}"
                                  f" − returned {line['returned']:g} − waste {line['waste']:g} = "
                                  f"{line['balance']:g} {line['unit'] or ''} unaccounted"
                                  f" ({share} %"
                                  f"; tolerance {tolerance if tolerance is not None else 0:g} %)"})
    return found
