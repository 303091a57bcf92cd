"""The batch record an inspector reads (issue 17): its JSON and its PDF both show the lots consumed (per step
and per material) and the product lot, the equipment's logbook states during the batch, the yield and the
material reconciliation with their calculation, and every exception QA saw first with its rule."""

from __future__ import annotations

import pytest

from engine.definitions.bundle import Bundle
from engine.services import Gmpflow
from gmp.processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED, pdf_text
from gmp.processes.sop_execution.test_sop_execution import run_batch
from gmp.services import GmpServices
from tests.batch_support import Plant
from tests.test_batch_lock import LINTED


def squeezed(text: str) -> str:
    """Without any white space: a table cell wraps its words (and hyphenated ids) to the column's width."""
    return "".join(text.split())


def test_the_json_and_the_pdf_show_lots_equipment_yield_reconciliation_and_each_exception(
        plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", {**CLOSE, "capa_status": "open"}, "Approved")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    pdf = squeezed(pdf_text(plant.engine.pack(GmpServices).batch_record("B-1", "pdf")))

    # lots: each step's rows, each material's lots, the product lot
    assert [(m["lot"], m["quantity"]) for s in record["steps"] for m in s["materials_used"]] == [
        ("L-PARA-7", 0.5), ("L-LAC-3", 0.15)]
    assert {c["product"]: [lot["lot"] for lot in c["lots"]] for c in record["consumed"]} == {
        "MAT-PARACETAMOL": ["L-PARA-7"], "MAT-LACTOSE": ["L-LAC-3"]}
    assert (record["product_lot"]["lot_id"], record["product_lot"]["status"]) == ("L-B-1", "quarantine")
    for text in ("MAT-PARACETAMOL lot L-PARA-7: 0.5 kg", "MAT-LACTOSE lot L-LAC-3: 0.15 kg",
                 "lot L-PARA-7: 0.5", "Product lot L-B-1", "status quarantine"):
        assert squeezed(text) in pdf, text

    # equipment: the logbook's states of this batch (in use from its step, left dirty at its end)
    kinds = {(e["equipment_id"], e["kind"]) for e in record["equipment"]}
    assert len(kinds) >= 2 and {equipment for equipment, _ in kinds} == {"EQ-GRAN-01"}
    for equipment, kind in kinds:
        assert squeezed(f"{equipment} {kind.replace('_', ' ')}") in pdf, kind

    # yield and reconciliation, with the calculation
    assert (record["yield"]["actual"], record["yield"]["theoretical"]) == (990, 1000)
    assert squeezed(f"990.0 / 1000.0 × 100 = {record['yield']['yield_pct']} %") in pdf
    assert squeezed("Material reconciliation") in pdf
    for line in record["reconciliation"]["materials"]:
        assert line["material"] in pdf, line

    # every exception, each with its rule's reason
    kinds_seen = sorted(e["kind"] for e in record["exceptions"])
    assert kinds_seen == ["correction", "deviation", "open_capa", "out_of_limit"]
    for exception in record["exceptions"]:
        assert squeezed(exception["text"]) in pdf, exception["kind"]
        assert squeezed(exception["why"]) in pdf, exception["kind"]
    assert squeezed("CAPA CAPA-2026-014 (open)") in pdf


@pytest.mark.parametrize(("name", "value", "refused"), [
    ("exception.fact", "overrides", False),
    ("exception.fact", "two words", True),
    ("exception.when", "__import__('os')", True),   # and no exception.fact either
    ("exception.text", "'resumed: ' + (", True),
])
def test_lint_checks_the_properties_that_flag_a_task_as_an_exception_fact(engine: Gmpflow, name: str,
                                                                          value: str, refused: bool) -> None:
    problems = engine.lint_bundle(Bundle({"lock_lint.bpmn": LINTED.format(name=name, value=value)}))
    assert bool(problems) is refused, problems
    assert {p.code for p in problems} <= {"bad_exception_property"}
