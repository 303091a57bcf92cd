"""Yield and material reconciliation after the last step (gmp.batch_yield; 21 CFR 211.103, 211.188(b)(7)):
theoretical yield from the recipe, actual yield from the operator, per material issued − consumed − returned −
waste with consumption from the lots the steps consumed; outside the recipe's yield limits or its
reconciliation tolerance an exception for QA, with the calculation in the batch record (JSON, HTML, PDF)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.audit import Actor
from engine.errors import ValidationFailed
from gmp import lots
from gmp.processes.batch_release.test_batch_release import pdf_text
from gmp.services import GmpServices
from tests.batch_support import SOP, SOP_KEY, Plant

LIMITED = {**SOP, "theoretical_yield": {"quantity": 1000, "unit": "pcs"},
           "yield_limits": {"low_pct": 95, "high_pct": 101}, "reconciliation_tolerance_pct": 2}
OPERATOR = Actor("olivia", "Olivia Example")


def with_limits(plant: Plant) -> None:
    engine, admin = plant.engine, plant.people["ada"].actor
    draft = engine.masterdata.new_draft(admin, "recipe", SOP_KEY, LIMITED)
    engine.masterdata.submit(admin, "recipe", SOP_KEY, draft.number)
    plant.sop = engine.masterdata.make_effective(admin, draft.id, None, None)


def run_steps_consuming(plant: Plant, paracetamol: float = 0.5) -> int:
    """A batch whose step 1 consumes ``paracetamol`` kg of a released lot (recorded as a lot consumption)."""
    gmp = plant.engine.pack(GmpServices)
    gmp.create_lot(Actor.system(), {"lot_id": "PARA-1", "material": "MAT-PARACETAMOL", "quantity": 10,
                                    "uom": "kg", "expiry": "2027-12-31"}, released_by_init=True)
    batch = plant.start_batch()
    step1 = plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    gmp.consume_lot(OPERATOR, lots.Use("PARA-1", "MAT-PARACETAMOL", paracetamol, "kg", plant.clock.now(),
                                       lots.allowed_materials(SOP["steps"][0])),
                    batch_id="B-1", instance_id=step1, step=1)
    step2 = plant.perform("olivia", "B-1", 2, {"impeller speed": 200, "moisture": 2.0},
                          equipment="EQ-GRAN-01")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    return batch


def record_yield(plant: Plant, batch: int, produced: float, reconciliation: list[dict[str, Any]]) -> None:
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": produced,
                                                    "reconciliation": reconciliation}, "Performed")


def kinds(record: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in record["exceptions"]]


def test_a_yield_and_reconciliation_within_limits_show_their_calculation_and_no_exception(
        plant: Plant) -> None:
    with_limits(plant)
    batch = run_steps_consuming(plant)
    record_yield(plant, batch, 990, [
        {"material": "MAT-PARACETAMOL", "issued": 0.6, "returned": 0.1, "waste": 0},
        {"material": "MAT-LACTOSE", "issued": 0.15, "returned": 0.15, "waste": 0}])
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["yield"] | {"comment": None} == {
        "theoretical": 1000.0, "theoretical_source": "recipe", "unit": "pcs", "actual": 990.0,
        "yield_pct": 99.0,
        "low_pct": 95.0, "high_pct": 101.0, "within_limits": True, "comment": None}
    paracetamol = next(m for m in record["reconciliation"]["materials"] if m["material"] == "MAT-PARACETAMOL")
    assert (paracetamol["issued"], paracetamol["consumed"], paracetamol["returned"], paracetamol["balance"],
            paracetamol["within_tolerance"]) == (0.6, 0.5, 0.1, 0.0, True)
    assert not {"yield_out_of_limits", "reconciliation_out_of_tolerance"} & set(kinds(record))
    html = plant.engine.pack(GmpServices).batch_record("B-1", fmt="html")
    assert "990.0 / 1000.0 × 100 = 99.0 %" in html and "0.6 − 0.5 − 0.1 − 0.0 = 0.0" in html


def test_a_low_yield_is_an_exception_for_qa_with_its_calculation(plant: Plant) -> None:
    with_limits(plant)
    batch = run_steps_consuming(plant)
    record_yield(plant, batch, 900, [{"material": "MAT-PARACETAMOL", "issued": 0.5, "returned": 0,
                                      "waste": 0}])
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["yield"]["yield_pct"], record["yield"]["within_limits"]) == (90.0, False)
    [low] = [e for e in record["exceptions"] if e["kind"] == "yield_out_of_limits"]
    assert low["text"] == "yield 900 of 1000 = 90 % is outside 95.0–101.0 %"
    summary = plant.engine.instance_detail(batch)["variables"]["execution_summary"]
    assert summary["facts"]["yield_out_of_limits"] == 1  # what release_exceptions.dmn reads
    assert "OUTSIDE" in pdf_text(plant.engine.pack(GmpServices).batch_record("B-1", fmt="pdf"))


def test_material_not_accounted_for_is_a_reconciliation_exception(plant: Plant) -> None:
    """0.8 kg issued, 0.5 kg consumed from the lot, 0.1 kg returned, no waste: 0.2 kg (25 %) unaccounted."""
    with_limits(plant)
    batch = run_steps_consuming(plant)
    record_yield(plant, batch, 1000, [{"material": "MAT-PARACETAMOL", "issued": 0.8, "returned": 0.1,
                                       "waste": 0}])
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    line = next(m for m in record["reconciliation"]["materials"] if m["material"] == "MAT-PARACETAMOL")
    assert (line["balance"], line["balance_pct"], line["within_tolerance"]) == (0.2, 25.0, False)
    [found] = [e for e in record["exceptions"] if e["kind"] == "reconciliation_out_of_tolerance"]
    assert found["material"] == "MAT-PARACETAMOL"
    assert "= 0.2 kg unaccounted (25 %; tolerance 2 %)" in found["text"]
    lactose = next(m for m in record["reconciliation"]["materials"] if m["material"] == "MAT-LACTOSE")
    assert (lactose["reconciled"], lactose["within_tolerance"]) == (False, None)  # shown as not reconciled
    assert "OUT OF TOLERANCE" in plant.engine.pack(GmpServices).batch_record("B-1", fmt="html")


def test_without_limits_in_the_recipe_the_order_quantity_is_the_basis_and_nothing_is_judged(
        plant: Plant) -> None:
    batch = run_steps_consuming(plant)
    record_yield(plant, batch, 500, [])
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["yield"]["theoretical_source"], record["yield"]["yield_pct"],
            record["yield"]["within_limits"]) == ("order", 50.0, None)
    assert "yield_out_of_limits" not in kinds(record)


@pytest.mark.parametrize("row", [{"material": "MAT-PARACETAMOL", "issued": -1},
                                 {"material": "MAT-PARACETAMOL"}])
def test_a_reconciliation_row_that_the_form_does_not_allow_is_refused(plant: Plant,
                                                                       row: dict[str, Any]) -> None:
    batch = run_steps_consuming(plant)
    with pytest.raises(ValidationFailed):
        record_yield(plant, batch, 1000, [row])
    assert plant.open_elements(batch) == ["record_yield"]
