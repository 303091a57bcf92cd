"""Batch release: the electronic batch record reviewed by exception, the audit trail reviewed, every deviation
closed, a signed disposition by someone who took no part in the batch, the disposition sent to ERP and MES and
the record archived as PDF and JSON carrying the same facts.

Every scenario runs twice (cached engine, and save-and-reload: a new engine before every call)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from engine.errors import SignatureRejected, ValidationFailed
from engine.states import InstanceStatus
from gmp.processes.sop_execution.test_sop_execution import GRANULATE, run_batch
from gmp.services import GmpServices
from tests.b2mml_schema import assert_valid
from tests.batch_support import PASSWORD, Plant
from tests.conftest import ADMIN

REVIEWED = {"record_reviewed": True, "review_comment": "exceptions understood"}
AUDITED = {"audit_trail_reviewed": True}
CLOSE = {"deviation_id": "DEV-B-1/00002", "closure": "close", "root_cause": "water dosing pump drift",
         "capa_ref": "CAPA-2026-014"}


def reviewed(plant: Plant) -> int:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    return release


def pdf_text(data: bytes) -> str:
    """The PDF's words, one space apart: a table cell's text wraps to the width of its column."""
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


def test_end_to_end_release_with_exceptions_disposition_archive_and_clean_audit(
        plant: Plant, b2mml_schema) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    exceptions = plant.engine.instance_detail(release)["variables"]["exceptions"]
    assert sorted((e["kind"], e["step"]) for e in exceptions) == [
        ("correction", 1), ("deviation", 2), ("out_of_limit", 2)]  # exactly what happened, QA sees it first
    assert plant.engine.instance_detail(release)["variables"]["exception_kinds"] == [
        "deviation", "out_of_limit", "correction"]
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    assert plant.open_elements(release) == ["review_audit_trail"]  # the audit-trail review is its own step
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    assert plant.open_elements(release) == ["close_deviation"]
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    plant.complete("quinn", release, "decide",
                   {"disposition": "released", "decision_reason": "record complete, deviation closed"},
                   "Released")
    assert plant.status(release) == InstanceStatus.COMPLETED
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "released"  # the ERP's lot
    [sync] = [m for m in plant.simulator.counterpart.received if m["kind"] == "SyncMaterialLot"]  # the MES's
    assert_valid(b2mml_schema, sync["xml"].encode())
    assert "B-1" in sync["xml"] and "Released" in sync["xml"]
    archived = plant.engine.instance_detail(release)["variables"]["archived"]
    record = json.loads(Path(archived["json"]).read_text())
    text = pdf_text(Path(archived["pdf"]).read_bytes())
    assert record["release"]["decision"]["disposition"] == "released"
    assert (record["deviations"][0]["state"] == "closed"
            and record["deviations"][0]["closure"]["capa_ref"] == "CAPA-2026-014")
    for fact in ("B-1", "MO-1", "SOP-TEST", "CAPA-2026-014", "water dosing pump drift", "typed 5.0 for 0.50",
                 "granulate too wet", "EQ-GRAN-01", "L-PARA-7", "Olivia Example", "Oscar Example",
                 "Released"):
        assert fact in json.dumps(record) and fact in text, fact
    assert plant.engine.verify_audit().ok


def test_the_batch_record_api_serves_reviewers_json_html_and_pdf_with_the_same_facts(plant: Plant) -> None:
    from webapp import create_app

    run_batch(plant)
    client = create_app({"TESTING": True, "SECRET_KEY": "batch-record"}, engine=plant.engine).test_client()

    def as_(username: str) -> dict[str, str]:
        token = client.post("/api/v1/tokens", json={"username": username, "password": PASSWORD}).json["token"]
        return {"Authorization": f"Bearer {token}"}

    quinn = as_("quinn")
    record = client.get("/api/v1/batches/B-1/record", headers=quinn).json
    html = client.get("/api/v1/batches/B-1/record.html", headers=quinn)
    pdf = client.get("/api/v1/batches/B-1/record.pdf", headers=quinn)
    assert (html.mimetype, pdf.mimetype) == ("text/html", "application/pdf")
    assert pdf.headers["Content-Disposition"] == 'inline; filename="B-1-batch-record.pdf"'
    for fact in ("B-1", "MO-1", "SOP-TEST", "typed 5.0 for 0.50", "granulate too wet", "L-PARA-7",
                 "Olivia Example"):
        assert fact in json.dumps(record) and fact in html.text and fact in pdf_text(pdf.data), fact
    # reads need a reason (engine.access): olivia performed steps of the batch, a planner took no part
    assert client.get("/api/v1/batches/B-1/record", headers=as_("olivia")).status_code == 200
    plant.engine.add_user(ADMIN, "paula", "Paula Planner", PASSWORD, ["planner"])
    refused = client.get("/api/v1/batches/B-1/record", headers=as_("paula"))
    assert (refused.status_code, refused.json["code"]) == (403, "not_permitted")
    missing = client.get("/api/v1/batches/B-404/record.pdf", headers=quinn)
    assert (missing.status_code, missing.json["code"]) == (404, "batch_not_found")


def test_a_qa_person_who_took_part_is_refused_the_decision(plant: Plant) -> None:
    batch = plant.start_batch()
    plant.perform("rita", "B-1", 1, {"weight": 0.5})  # rita (qa and operator) performs step 1
    step2 = plant.perform("olivia", "B-1", 2, {"impeller speed": 200, "moisture": 2.0},
                          equipment="EQ-GRAN-01")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": 1000}, "Performed")
    release = plant.instance("batch_release", "B-1")
    assert plant.engine.instance_detail(release)["variables"]["exceptions"] == []  # still reviewed
    with pytest.raises(SignatureRejected) as refused:
        plant.complete("rita", release, "review_record", REVIEWED, "Reviewed")
    assert refused.value.code == "signature_four_eyes"
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    with pytest.raises(SignatureRejected) as refused:
        plant.complete("rita", release, "decide", {"disposition": "released", "decision_reason": "ok"},
                       "Released")
    assert refused.value.code == "signature_four_eyes"
    plant.complete("quinn", release, "decide", {"disposition": "released", "decision_reason": "ok"},
                   "Released")
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "released"


@pytest.mark.parametrize("part", ["performer", "witness", "assessor", "correction approver"])
def test_nobody_who_took_part_in_the_batch_signs_its_disposition(plant: Plant, part: str) -> None:
    """Vera holds qa (and supervisor and operator): whatever she did in the batch's other instances (its
    steps, a correction) keeps her from its disposition (``signature.distinctFrom`` ``related``), even what
    the release's participant list gathered at its start does not name (an assessment, an approval)."""
    batch = plant.start_batch()
    plant.perform("vera" if part == "performer" else "olivia", "B-1", 1, {"weight": 0.5})
    if part == "correction approver":
        correction = plant.engine.start_instance(plant.people["olivia"].actor, "sop_correction", "B-1",
                                                 {"batch_id": "B-1"}).id
        plant.complete("olivia", correction, "request_correction",
                       {"step_number": 1, "parameter": "weight", "new_value": 0.502,
                        "correction_reason": "balance re-read"}, "Performed")
        plant.complete("vera", correction, "approve_correction", {"correction_decision": "approve"},
                       "Approved")
    step2 = plant.perform("olivia", "B-1", 2, {**GRANULATE, "moisture": 2.8}, equipment="EQ-GRAN-01")
    plant.complete("olivia", step2, "confirm_value", {"out_of_limit_action": "confirm",
                                                     "deviation_description": "granulate too wet",
                                                     "immediate_action": "dried 10 min longer"}, "Performed")
    plant.complete("vera" if part == "assessor" else "sam", step2, "assess_deviation",
                   {"classification": "minor", "assessment_decision": "continue",
                    "assessment_comment": "within validated drying range"}, "Reviewed")
    plant.complete("vera" if part == "witness" else "oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": 990}, "Performed")
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    decision = {"disposition": "released", "decision_reason": "record complete"}
    with pytest.raises(SignatureRejected) as refused:
        plant.complete("vera", release, "decide", decision, "Released")
    assert refused.value.code == "signature_four_eyes"
    assert next(u.failed_attempts for u in plant.engine.list_users() if u.username == "vera") == 0
    assert plant.open_elements(release) == ["decide"]
    plant.complete("quinn", release, "decide", decision, "Released")  # who took no part releases it
    assert plant.status(release) == InstanceStatus.COMPLETED


def test_release_with_an_open_deviation_is_refused(plant: Plant) -> None:
    release = reviewed(plant)
    with pytest.raises(ValidationFailed) as refused:  # closing needs root cause and CAPA
        plant.complete("quinn", release, "close_deviation", {**CLOSE, "capa_ref": ""}, "Approved")
    assert refused.value.code == "guard_failed"
    plant.complete("quinn", release, "close_deviation",
                   {"deviation_id": CLOSE["deviation_id"], "closure": "keep_open"}, "Reviewed")
    with pytest.raises(ValidationFailed) as refused:
        plant.complete("quinn", release, "decide", {"disposition": "released", "decision_reason": "ok"},
                       "Released")
    assert refused.value.code == "guard_failed" and "deviation" in refused.value.message
    with pytest.raises(ValidationFailed):  # the signature's meaning is the disposition
        plant.complete("quinn", release, "decide",
                       {"disposition": "quarantined", "decision_reason": "open CAPA"}, "Released")
    plant.complete("quinn", release, "decide", {"disposition": "quarantined", "decision_reason": "open CAPA"},
                   "Quarantined")
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "quarantined"
    assert plant.engine.pack(GmpServices).batch_record("B-1")["deviations"][0]["state"] != "closed"
