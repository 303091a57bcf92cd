"""Material lots checked at the point of use (issue 17.2): when an operator completes an SOP step's perform
task, each lot consumed is checked against the step's recipe materials BEFORE the signature is looked at. A
refusal answers 422 with the reason as its code and the field, stores nothing of the completion (no signature,
no lockout count, the lot unchanged), and stays visible: an audit event ``task.entry_refused`` and a
``refused_attempt`` exception in the batch record. An accepted entry consumes the lot in the completion's own
transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.services import Gmpflow
from engine.store.models import AuditEvent, Signature, User
from gmp.services import GmpServices
from gmp.tables import Lot
from tests.api_support import Api, body
from tests.batch_support import PASSWORD, SOP, SOP_KEY, Plant
from tests.conftest import ADMIN, ROOT
from webapp import create_app

PARA = "MAT-PARACETAMOL"  # step 1 plans 0.5 kg of it (± 5 %)
LAC = "MAT-LACTOSE"       # a material of step 2, not of step 1


@pytest.fixture
def floor(plant: Plant) -> Api:
    """The plant with batch B-1 started and lots of every kind at hand, and its REST API."""
    plant.engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "lot_disposition"])
    plant.receive_released_lot("L-OLD", PARA, expiry_days=-1)
    plant.receive_released_lot("L-LAST", PARA, quantity=0.49)
    quarantined = {"lot_id": "L-QUAR", "material": PARA, "quantity": 10, "uom": "kg", "expiry": "2027-06-30"}
    plant.engine.pack(GmpServices).create_lot(ADMIN, quarantined)  # its disposition waits for QA
    app = create_app({"TESTING": True, "SECRET_KEY": "point-of-use"}, engine=plant.engine)
    api = Api(app, app.test_client())
    api._created.update({"olivia", "oscar", "sam", "quinn", "ada"})
    plant.start_batch()
    return api


def perform(api: Api, plant: Plant, rows: list[dict[str, Any]], password: str = PASSWORD) -> Any:
    task = plant.task("olivia", plant.step("B-1", 1), "perform")
    return api.post(f"/api/v1/tasks/{task.id}/complete", as_="olivia", json={
        "data": {"values": [{"name": "weight", "value": 0.5}], "materials_used": rows},
        "signature": {"username": "olivia", "password": password, "meaning": "Performed"}})


def row(lot: str, material: str = PARA, quantity: float = 0.5, unit: str = "kg") -> dict[str, Any]:
    return {"material": material, "lot": lot, "quantity": quantity, "unit": unit}


def state(plant: Plant) -> dict[str, Any]:
    """What a refused completion must leave as it was: lots, signatures, the operator's failed attempts, and
    every audit event but the refusal's own."""
    with plant.engine.db.read() as session:
        return {"lots": sorted((lot.lot_id, lot.available) for lot in session.scalars(select(Lot))),
                "signatures": session.scalar(select(Signature.id).order_by(Signature.id.desc()).limit(1)),
                "failures": session.scalar(select(User.failed_attempts).where(User.username == "olivia")),
                "events": [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]}


REFUSALS = [  # (rows entered, code, field)
    ([row("L-NOPE")], "lot_unknown", "materials_used.0.lot"),
    ([row("L-QUAR")], "lot_not_released", "materials_used.0.lot"),
    ([row("L-OLD")], "lot_expired", "materials_used.0.lot"),
    ([row("L-LAC-3")], "lot_material_mismatch", "materials_used.0.lot"),
    ([row("L-LAC-3", LAC, 0.15)], "material_not_in_step", "materials_used.0.material"),
    ([row("L-PARA-7", quantity=5.0)], "quantity_out_of_tolerance", "materials_used.0.quantity"),
    ([row("L-PARA-7", unit="g", quantity=0.5)], "uom_mismatch", "materials_used.0.unit"),
    ([row("L-LAST")], "lot_insufficient", "materials_used.0.quantity"),
    ([row("L-PARA-7", quantity=0.25), row("L-NOPE", quantity=0.25)], "lot_unknown",
     "materials_used.1.lot"),  # nothing of row 0 consumed
]


def test_each_bad_lot_is_refused_before_the_signature_and_nothing_is_stored(plant: Plant, floor: Api) -> None:
    for rows, code, field in REFUSALS:
        for password in (PASSWORD, "wrong password"):  # the signature is never looked at: no lockout count
            before = state(plant)
            response = perform(floor, plant, rows, password)
            assert (response.status_code, body(response)["code"]) == (422, code), (rows, body(response))
            assert list(body(response)["errors"]) == [field]
            after = state(plant)
            assert after["events"] == [*before["events"], "task.entry_refused"], code
            assert {**after, "events": None} == {**before, "events": None}, code
    assert plant.open_elements(plant.step("B-1", 1)) == ["perform"]
    attempts = plant.engine.pack(GmpServices).batch_record("B-1")["steps"][0]["refused_attempts"]
    assert [a["code"] for a in attempts] == [code for _, code, _ in REFUSALS for _ in range(2)]
    assert {a["by"] for a in attempts} == {"olivia"}


def test_a_good_lot_is_consumed_with_the_completion_and_the_refusals_stay_in_the_record(
        plant: Plant, floor: Api) -> None:
    assert perform(floor, plant, [row("L-OLD")]).status_code == 422
    done = perform(floor, plant, [row("L-PARA-7", quantity=0.51)])
    assert done.status_code == 200, body(done)
    lot = body(floor.get("/api/v1/lots/L-PARA-7", as_="quinn"))
    assert lot["available"] == pytest.approx(9.49)
    [consumed] = [h for h in lot["history"] if h["kind"] == "consumed"]
    assert (consumed["batch_id"], consumed["step"], consumed["by"], consumed["quantity"]) == (
        "B-1", 1, "olivia", 0.51)
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["steps"][0]["materials_used"] == [row("L-PARA-7", quantity=0.51)]
    [exception] = [e for e in record["exceptions"] if e["kind"] == "refused_attempt"]
    assert (exception["step"], exception["code"]) == (1, "lot_expired")
    html = plant.engine.pack(GmpServices).batch_record("B-1", "html")
    assert "refused attempt by Olivia Example" in str(html)


def test_a_lot_never_goes_below_zero_even_when_one_entry_takes_it_twice(plant: Plant, floor: Api) -> None:
    plant.receive_released_lot("L-HALF", PARA, quantity=0.4)  # each row alone fits, both together do not
    before = state(plant)
    response = perform(floor, plant, [row("L-HALF", quantity=0.25), row("L-HALF", quantity=0.25)])
    assert (response.status_code, body(response)["code"]) == (422, "lot_insufficient")
    assert list(body(response)["errors"]) == ["materials_used.1.quantity"]
    assert state(plant)["lots"] == before["lots"]  # the first row's consumption rolled back with the rest


def test_one_material_from_several_lots_is_judged_on_its_total_against_the_tolerance(plant: Plant,
                                                                                      floor: Api) -> None:
    plant.receive_released_lot("L-PARA-8", PARA)
    too_much = perform(floor, plant, [row("L-PARA-7", quantity=0.3), row("L-PARA-8", quantity=0.3)])
    assert (too_much.status_code, body(too_much)["code"]) == (422, "quantity_out_of_tolerance")  # 0.6 > 0.525
    assert "0.6 kg of MAT-PARACETAMOL in all this step's rows" in body(too_much)["detail"]
    # 0.3 + 0.15 + 0.05 of one planned 0.5 kg: each row alone is far below the tolerance, together within it
    split = [row("L-PARA-7", quantity=0.3), row("L-PARA-8", quantity=0.15), row("L-PARA-7", quantity=0.05)]
    done = perform(floor, plant, split)
    assert done.status_code == 200, body(done)
    assert body(floor.get("/api/v1/lots/L-PARA-7", as_="quinn"))["available"] == pytest.approx(9.65)
    assert body(floor.get("/api/v1/lots/L-PARA-8", as_="quinn"))["available"] == pytest.approx(9.85)
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    [consumed] = [c for c in record["consumed"] if c["product"] == PARA]
    assert consumed["quantity"] == pytest.approx(0.5)
    assert consumed["lots"] == [{"lot": "L-PARA-7", "quantity": pytest.approx(0.35)},
                                {"lot": "L-PARA-8", "quantity": pytest.approx(0.15)}]
    [line] = [m for m in record["reconciliation"]["materials"] if m["material"] == PARA]
    assert line["consumed"] == pytest.approx(0.5)


def test_a_step_cannot_be_signed_while_a_required_recipe_material_was_never_consumed(plant: Plant,
                                                                                     floor: Api) -> None:
    """The recipe says which materials are required (``required`` on a step's material): a step that
    consumed none of one is refused before the signature, like a bad lot."""
    steps = [dict(step) for step in SOP["steps"]]
    steps[0] = {**steps[0], "materials": [{**steps[0]["materials"][0], "required": True}]}
    draft = plant.engine.masterdata.new_draft(ADMIN, "recipe", SOP_KEY, {**SOP, "steps": steps})
    plant.engine.masterdata.submit(ADMIN, "recipe", SOP_KEY, draft.number)
    plant.sop = plant.engine.masterdata.make_effective(ADMIN, draft.id, None, None)
    plant.start_batch("B-2", "MO-2")
    task = plant.task("olivia", plant.step("B-2", 1), "perform")

    def complete(rows: list[dict[str, Any]]) -> Any:
        return floor.post(f"/api/v1/tasks/{task.id}/complete", as_="olivia", json={
            "data": {"values": [{"name": "weight", "value": 0.5}], "materials_used": rows},
            "signature": {"username": "olivia", "password": PASSWORD, "meaning": "Performed"}})

    before = state(plant)
    refused = complete([])
    assert (refused.status_code, body(refused)["code"]) == (422, "material_not_consumed")
    assert list(body(refused)["errors"]) == ["materials_used"] and PARA in body(refused)["detail"]
    assert state(plant)["lots"] == before["lots"] and state(plant)["signatures"] == before["signatures"]
    assert plant.open_elements(plant.step("B-2", 1)) == ["perform"]
    assert complete([row("L-PARA-7")]).status_code == 200
    assert plant.open_elements(plant.step("B-2", 1)) == []


# -- the model names the check; lint keeps it honest ----------------------------------------------------
def _variant(tmp_path: Path, old: str, new: str, process_id: str = "sop_step") -> list[str]:
    text = (ROOT / "gmp" / "processes" / "sop_step" / "sop_step.bpmn").read_text()
    assert old in text
    text = text.replace(old, new).replace('id="sop_step"', f'id="{process_id}"').replace(
        'processRef="sop_step"', f'processRef="{process_id}"')
    (tmp_path / "step.bpmn").write_text(text)
    for form in ("sop_step_perform", "sop_step_out_of_limit", "sop_deviation_assess", "sop_hold_decision",
                 "sop_step_verify"):
        (tmp_path / f"{form}.form").write_text((ROOT / "gmp" / "forms" / f"{form}.form").read_text())
    return sorted({p.code for p in Gmpflow(change_control="off").lint([tmp_path])})


ENTRY = '<spiffworkflow:property name="entry.check" value="sop.entry_check"/>'
LINT_CASES = {
    "the shipped model": (ENTRY, ENTRY, "sop_step", []),
    "an unknown check": (ENTRY, ENTRY.replace("sop.entry_check", "sop.no_such_check"), "sop_step",
                         ["unknown_entry_check"]),
    "a service operation as a check": (ENTRY, ENTRY.replace("sop.entry_check", "echo"), "sop_step",
                                       ["unknown_entry_check"]),
    "the check in another process": (ENTRY, ENTRY, "rogue_step", ["operation_not_permitted"]),
    "the check as a service task": ('serviceTaskOperator id="sop.check_entry"',
                                    'serviceTaskOperator id="sop.entry_check"', "sop_step",
                                    ["entry_check_misplaced", "missing_parameter", "unknown_parameter"]),
}


@pytest.mark.parametrize("case", LINT_CASES, ids=list(LINT_CASES))
def test_lint_checks_the_entry_check_a_model_names(tmp_path: Path, case: str) -> None:
    old, new, process_id, codes = LINT_CASES[case]
    assert _variant(tmp_path, old, new, process_id) == codes
