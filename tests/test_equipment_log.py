"""The equipment logbook (gmp.equipment_log, processes/equipment_cleaning,
GET /api/v1/equipment/{id}/logbook): a step on equipment that is not clean, in use by another batch or out of
calibration is refused with the reason as its code; an accepted step marks the equipment in use by its batch,
the batch's end leaves it dirty; only the cleaning model, performed and verified by two people, records it
clean.

Over the batch world of ``tests/batch_support`` (real ERP/MES simulator, real accounts, real signatures); the
plant's set-up cleans EQ-GRAN-01 through the cleaning model."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from engine.errors import EntryRefused, PermissionDenied, SignatureRejected
from engine.operations import CallContext
from gmp import equipment_log
from gmp.services import GmpServices
from tests.batch_support import PASSWORD, Plant
from tests.conftest import ROOT
from tests.session_support import ApiCaller

GRANULATE = {"impeller speed": 200, "moisture": 2.0}
OTHER_PRODUCT = "PRD-IBU-200"


def granulate(plant: Plant, batch_id: str, equipment: str = "EQ-GRAN-01", who: str = "olivia") -> int:
    """Step 1 of the batch, then step 2 on ``equipment``; the step instance of step 2."""
    plant.perform(who, batch_id, 1, {"weight": 0.5})
    return plant.perform(who, batch_id, 2, GRANULATE, equipment=equipment)


def run_to_the_end(plant: Plant, batch_id: str, product: str = "PRD-PARA-500", order: str = "MO-1") -> int:
    batch = plant.start_batch(batch_id, order=order, product=product)
    step2 = granulate(plant, batch_id)
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", batch_id, 3, {"blend time": 10})
    return batch


def refused_at_granulation(plant: Plant, batch_id: str) -> tuple[int, EntryRefused]:
    """Step 1 of the batch, then step 2 on the granulator refused before the signature: (step 2, refusal)."""
    plant.perform("olivia", batch_id, 1, {"weight": 0.5})
    with pytest.raises(EntryRefused) as refused:
        plant.perform("olivia", batch_id, 2, GRANULATE, equipment="EQ-GRAN-01")
    step2 = plant.step(batch_id, 2)
    assert plant.open_elements(step2) == ["perform"]  # nothing signed: the operator is told first
    assert plant.engine.list_signatures(instance_id=step2) == []
    return step2, refused.value


def check_of(plant: Plant, step_instance: int) -> dict[str, Any]:
    return plant.engine.instance_detail(step_instance)["variables"]["equipment_check"]  # type: ignore[no-any-return]


def logbook(plant: Plant, equipment_id: str = "EQ-GRAN-01") -> dict[str, Any]:
    return plant.engine.pack(GmpServices).equipment_logbook(plant.people["quinn"], equipment_id)


def test_an_accepted_step_marks_the_equipment_in_use_and_the_batch_end_leaves_it_dirty(plant: Plant) -> None:
    assert logbook(plant)["state"] == "clean"
    plant.start_batch("B-1")
    step2 = granulate(plant, "B-1")
    assert check_of(plant, step2)["ok"] and check_of(plant, step2)["equipment"]["cleaned_at"]
    assert (logbook(plant)["state"], logbook(plant)["batch_id"]) == ("in_use", "B-1")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    book = logbook(plant)
    assert (book["state"], book["batch_id"], book["product"]) == ("dirty", "B-1", "PRD-PARA-500")
    kinds = [(e["kind"], e.get("batch_id")) for e in book["entries"] if e["kind"] not in ("calibration",)]
    assert kinds == [("cleaned", None), ("in_use", "B-1"), ("released", "B-1")]
    cleaned = next(e for e in book["entries"] if e["kind"] == "cleaned")
    assert (cleaned["performed_by"], cleaned["verified_by"]) == ("olivia", "sam")
    record_equipment = plant.engine.pack(GmpServices).batch_record("B-1")["steps"][1]["equipment"]
    assert record_equipment["id"] == "EQ-GRAN-01" and record_equipment["accepted"]


def test_dirty_equipment_is_refused_to_a_batch_of_another_product_until_it_is_cleaned(plant: Plant) -> None:
    run_to_the_end(plant, "B-1")
    plant.start_batch("B-2", order="MO-2", product=OTHER_PRODUCT)
    step2, refusal = refused_at_granulation(plant, "B-2")
    assert refusal.code == "equipment_not_clean" and "PRD-PARA-500" in refusal.message
    assert logbook(plant)["state"] == "dirty"  # no use was recorded
    plant.clean("EQ-GRAN-01")
    plant.perform("olivia", "B-2", 2, GRANULATE, equipment="EQ-GRAN-01")
    assert check_of(plant, step2)["ok"] and plant.open_elements(step2) == ["verify"]
    assert (logbook(plant)["state"], logbook(plant)["batch_id"]) == ("in_use", "B-2")


def test_a_batch_of_the_same_product_may_follow_within_the_clean_hold_time(plant: Plant) -> None:
    run_to_the_end(plant, "B-1")
    plant.start_batch("B-2", order="MO-2")
    step2 = granulate(plant, "B-2")
    assert check_of(plant, step2)["ok"]


def test_equipment_whose_clean_hold_time_has_passed_is_refused(plant: Plant) -> None:
    plant.start_batch("B-1")
    plant.clock.advance(hours=73)  # the demo granulator class holds clean for 72 h
    _, refusal = refused_at_granulation(plant, "B-1")
    assert refusal.code == "equipment_not_clean" and "clean hold time of 72 h" in refusal.message
    assert logbook(plant)["state"] == "clean_hold_expired"


def test_equipment_in_use_by_another_batch_is_refused(plant: Plant) -> None:
    plant.start_batch("B-1")
    granulate(plant, "B-1")  # B-1 holds the granulator (its verify is still open)
    plant.start_batch("B-2", order="MO-2")
    _, refusal = refused_at_granulation(plant, "B-2")
    assert refusal.code == "equipment_in_use" and "batch B-1" in refusal.message
    assert (logbook(plant)["state"], logbook(plant)["batch_id"]) == ("in_use", "B-1")


def test_equipment_whose_calibration_lapsed_is_refused(plant: Plant) -> None:
    engine, admin = plant.engine, plant.people["ada"].actor
    lapsed = {**json.loads(json.dumps(engine.masterdata.effective_at("equipment", "EQ-GRAN-01").data)),
              "calibration_due": (plant.clock.now() - timedelta(days=1)).date().isoformat()}
    draft = engine.masterdata.new_draft(admin, "equipment", "EQ-GRAN-01", lapsed)
    engine.masterdata.submit(admin, "equipment", "EQ-GRAN-01", draft.number)
    engine.masterdata.make_effective(admin, draft.id, None, None)
    plant.start_batch("B-1")
    _, refusal = refused_at_granulation(plant, "B-1")
    assert refusal.code == "equipment_calibration_due"
    assert refusal.message == f"The calibration of EQ-GRAN-01 was due on {lapsed['calibration_due']}."
    assert [e["calibration_due"] for e in logbook(plant)["entries"] if e["kind"] == "calibration"][-1] == \
        lapsed["calibration_due"]


def test_the_check_is_a_pure_function_of_equipment_batch_product_and_time(plant: Plant) -> None:
    """What the pre-signature check calls: nothing is written, the refusal carries the reason as its code."""
    now = plant.clock.now()
    with plant.engine.db.read() as session:
        info = equipment_log.check(session, "EQ-GRAN-01", "B-9", "PRD-PARA-500", now,
                                   required_class="GRANULATOR")
        assert info is not None and info["id"] == "EQ-GRAN-01"
        for equipment, required, code in (("", "GRANULATOR", "equipment_required"),
                                          ("EQ-NOPE", None, "equipment_not_registered"),
                                          ("EQ-GRAN-01", "TABLET_PRESS", "equipment_class_mismatch")):
            with pytest.raises(EntryRefused) as refused:
                equipment_log.check(session, equipment, "B-9", "PRD-PARA-500", now, required_class=required)
            assert refused.value.code == code
        with pytest.raises(EntryRefused) as later:
            equipment_log.check(session, "EQ-GRAN-01", "B-9", "PRD-PARA-500", now + timedelta(hours=100))
        assert later.value.code == "equipment_not_clean"
    assert [e["kind"] for e in logbook(plant)["entries"] if e["kind"] != "calibration"] == ["cleaned"]


# -- only the cleaning model records a cleaning ------------------------------------------------------------
def test_the_one_who_cleaned_cannot_verify_the_cleaning(plant: Plant) -> None:
    started = plant.engine.start_instance(plant.people["vera"], "equipment_cleaning", "EQ-GRAN-01",
                                          {"equipment_id": "EQ-GRAN-01"})
    plant.complete("vera", started.id, "perform_cleaning",
                   {"cleaning_method": "washed", "cleaned_per_sop": True}, "Performed")
    with pytest.raises(SignatureRejected) as own:
        plant.complete("vera", started.id, "verify_cleaning", {"visually_clean": True}, "Verified")
    assert own.value.code == "signature_four_eyes"
    assert [e["kind"] for e in logbook(plant)["entries"]].count("cleaned") == 1  # the set-up's only


def test_a_cleaning_is_recorded_by_the_cleaning_model_only(plant: Plant, tmp_path: Any) -> None:
    api = ApiCaller(plant.engine, "equipment", PASSWORD)
    before = logbook(plant)["entries"]
    # no route writes the logbook
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        answer = api(method, "/api/v1/equipment/EQ-GRAN-01/logbook", "ada", {"kind": "cleaned"})
        assert answer.status_code == 405
    # the operation refuses any instance but a cleaning's, and a cleaning not performed and verified yet
    batch = plant.start_batch("B-1")
    for instance_id in (None, batch):
        with pytest.raises(PermissionDenied) as refused:
            equipment_log.record_cleaning(plant.engine, {"equipment_id": "EQ-GRAN-01"},
                                          CallContext("g", instance_id, 1))
        assert refused.value.code == "not_permitted"
    cleaning = api("POST", "/api/v1/process-definitions/equipment_cleaning/instances", "olivia",
                   {"business_key": "EQ-GRAN-01", "variables": {"equipment_id": "EQ-GRAN-01"}})
    assert cleaning.status_code == 201, cleaning.json
    with pytest.raises(PermissionDenied) as unverified:
        equipment_log.record_cleaning(plant.engine, {"equipment_id": "EQ-GRAN-01"},
                                      CallContext("g", cleaning.json["id"], 1))
    assert unverified.value.code == "not_permitted"
    # the start form declares the equipment only: nothing else can be brought in
    forged = api("POST", "/api/v1/process-definitions/equipment_cleaning/instances", "olivia",
                 {"variables": {"equipment_id": "EQ-GRAN-01", "cleaning_recorded": {"ok": True}}})
    assert (forged.status_code, forged.json["code"]) == (422, "undeclared_field")
    assert logbook(plant)["entries"] == before
    # and lint refuses the operation in any other model
    bpmn = (ROOT / "gmp" / "processes" / "equipment_cleaning" / "equipment_cleaning.bpmn").read_text()
    (tmp_path / "sneaky.bpmn").write_text(bpmn.replace('"equipment_cleaning"', '"sneaky_cleaning"'))
    for form in ("equipment_cleaning_start", "equipment_cleaning_perform", "equipment_cleaning_verify"):
        (tmp_path / f"{form}.form").write_text((ROOT / "gmp" / "forms" / f"{form}.form").read_text())
    problems = plant.engine.lint([tmp_path])
    assert any("equipment.record_cleaning" in p.message and "equipment_cleaning" in p.message
               for p in problems), problems


def test_the_logbook_is_read_by_record_readers_and_its_rows_are_append_only_and_sealed(plant: Plant) -> None:
    api = ApiCaller(plant.engine, "equipment", PASSWORD)
    answer = api("GET", "/api/v1/equipment/EQ-GRAN-01/logbook", "quinn")
    assert answer.status_code == 200 and answer.json["state"] == "clean"
    assert answer.json["record"]["class"] == "GRANULATOR"
    refused = api("GET", "/api/v1/equipment/EQ-GRAN-01/logbook", "olivia")
    assert (refused.status_code, refused.json["code"]) == (403, "not_permitted")
    missing = api("GET", "/api/v1/equipment/EQ-NOPE/logbook", "quinn")
    assert (missing.status_code, missing.json["code"]) == (404, "equipment_not_found")
    assert plant.engine.verify_audit().ok
    with plant.engine.db.engine.begin() as connection, pytest.raises(Exception, match="append-only"):
        connection.execute(text("UPDATE equipment_log SET verified_by = 'olivia'"))
    with plant.engine.db.engine.begin() as connection, pytest.raises(Exception, match="append-only"):
        connection.execute(text("DELETE FROM equipment_log"))
    # someone who gets past the triggers is still found out: the row no longer matches its MAC
    postgres = plant.engine.db.is_postgres
    with plant.engine.db.engine.begin() as connection:
        connection.execute(text("ALTER TABLE equipment_log DISABLE TRIGGER USER" if postgres
                                else "DROP TRIGGER equipment_log_no_update"))
        connection.execute(text("UPDATE equipment_log SET verified_by = 'olivia'"))
        if postgres:  # the next test reuses the PostgreSQL database (the SQLite file is this test's own)
            connection.execute(text("ALTER TABLE equipment_log ENABLE TRIGGER USER"))
    report = plant.engine.verify_audit()
    assert (report.ok, report.table) == (False, "equipment_log")
