"""SOP execution: a batch started by message runs each SOP step as its own instance, with out-of-limit values,
deviations, corrections and second-person verification; then batch release is requested.

Every scenario runs twice (cached engine, and save-and-reload: a new engine before every call)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from connectors.b2mml import messages as m
from engine import failpoints
from engine.errors import EntryRefused, PermissionDenied, SignatureRejected, ValidationFailed
from engine.states import InstanceStatus
from gmp.services import GmpServices
from tests.b2mml_schema import assert_valid
from tests.batch_support import PASSWORD, SOP, SOP_KEY, Plant, effective
from tests.session_support import ApiCaller

GRANULATE = {"impeller speed": 200, "moisture": 2.0}


def run_batch(plant: Plant, batch_id: str = "B-1") -> int:
    """Step 1 with a mistyped weight corrected, step 2 with an out-of-limit moisture confirmed as a deviation
    (assessed: minor, continue) and verified by a second operator, step 3 clean; the yield recorded."""
    batch = plant.start_batch(batch_id)
    step1 = plant.perform("olivia", batch_id, 1, {"weight": 5.0},
                          materials=[{"material": "MAT-PARACETAMOL", "lot": "L-PARA-7", "quantity": 0.5,
                                      "unit": "kg"}])
    assert plant.open_elements(step1) == ["confirm_value"]
    plant.complete("olivia", step1, "confirm_value", {"out_of_limit_action": "correct",
                                                     "corrected_values": [{"name": "weight", "value": 0.5}],
                                                     "correction_reason": "typed 5.0 for 0.50"}, "Performed")
    assert plant.status(step1) == InstanceStatus.COMPLETED
    step2 = plant.perform("olivia", batch_id, 2, {**GRANULATE, "moisture": 2.8}, equipment="EQ-GRAN-01",
                          materials=[{"material": "MAT-LACTOSE", "lot": "L-LAC-3", "quantity": 0.15,
                                      "unit": "kg"}])
    plant.complete("olivia", step2, "confirm_value", {"out_of_limit_action": "confirm",
                                                     "deviation_description": "granulate too wet",
                                                     "immediate_action": "dried 10 min longer"}, "Performed")
    plant.complete("sam", step2, "assess_deviation", {"classification": "minor",
                                                     "assessment_decision": "continue",
                                                     "assessment_comment": "within validated drying range"},
                   "Reviewed")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    assert plant.status(step2) == InstanceStatus.COMPLETED
    step3 = plant.perform("oscar", batch_id, 3, {"blend time": 10})
    assert plant.status(step3) == InstanceStatus.COMPLETED
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": 990}, "Performed")
    return batch


def test_a_batch_runs_its_steps_reports_production_and_requests_release(plant: Plant) -> None:
    batch = run_batch(plant)
    assert plant.status(batch) == InstanceStatus.COMPLETED
    order = plant.simulator.counterpart.orders["MO-1"]
    assert order["state"] == "done" and order["produced_quantity"] == 990
    assert {c["product"]: c["quantity"] for c in order["consumed"]} == {"MAT-PARACETAMOL": 0.5,
                                                                        "MAT-LACTOSE": 0.15}
    release = plant.instance("batch_release", "B-1")
    assert plant.open_elements(release) == ["review_record"]
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert [s["number"] for s in record["steps"]] == [1, 2, 3]
    weight = record["steps"][0]["parameters"][0]
    assert (weight["value"], weight["first_entry"], weight["out_of_limit"]) == (0.5, 5.0, False)
    assert (record["corrections"][0]["old_value"] == 5.0
            and record["corrections"][0]["reason"] == "typed 5.0 for 0.50")
    step2 = record["steps"][1]
    assert step2["performed"]["by"] == "olivia" and step2["verified"]["by"] == "oscar"
    assert step2["equipment"]["id"] == "EQ-GRAN-01" and step2["equipment"]["accepted"]
    assert (step2["deviation"]["state"] == "assessed"
            and step2["deviation"]["assessment"]["classification"] == "minor")
    assert record["participants"] == ["olivia", "oscar"]


def performance_reports(plant: Plant) -> list[dict]:
    return [r for r in plant.simulator.counterpart.received if r["kind"] == "ProcessOperationsPerformance"]


def test_production_is_reported_to_the_mes_as_valid_process_operations_performance(plant: Plant,
                                                                                   b2mml_schema) -> None:
    batch = run_batch(plant)
    [report] = performance_reports(plant)
    assert_valid(b2mml_schema, report["xml"].encode())
    performance = m.parse_performance(report["xml"])
    assert (performance.order, performance.produced.product, performance.produced.quantity) == (
        "MO-1", "PRD-PARA-500", 990)
    assert {c.product: c.quantity for c in performance.consumed} == {"MAT-PARACETAMOL": 0.5,
                                                                     "MAT-LACTOSE": 0.15}
    assert performance.start and performance.end  # when the batch started, when its last step was performed
    variables = plant.engine.instance_detail(batch)["variables"]
    assert variables["performance_reported"] == {"bodid": report["bodid"], "order": "MO-1"}


def test_the_mes_applies_the_production_report_once_when_the_worker_fails_after_sending_it(
        plant: Plant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The MES took the report, then the worker failed before completing the task (as in a database outage):
    the job runs again with the same idempotency key (the BODID) and the MES does not apply it twice."""
    sent_first: list[str] = []

    def fail_after_the_first_report(name: str) -> None:
        if name == "job.after_call" and performance_reports(plant) and not sent_first:
            sent_first.append(performance_reports(plant)[0]["bodid"])
            raise ConnectionError("the database went away before the task was completed")

    monkeypatch.setattr(failpoints, "hit", fail_after_the_first_report)
    batch = run_batch(plant)
    assert plant.status(batch) == InstanceStatus.WAITING and sent_first  # its report job waits for the retry
    plant.clock.advance(seconds=60)
    plant.run_jobs()
    assert plant.status(batch) == InstanceStatus.COMPLETED
    [job] = [j for j in plant.engine.instance_detail(batch)["jobs"] if j.element_id == "report_performance"]
    assert job.attempts == 2
    assert [r["bodid"] for r in performance_reports(plant)] == sent_first  # sent twice, applied once


def test_the_witness_cannot_be_the_performer(plant: Plant) -> None:
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    step2 = plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")
    with pytest.raises(SignatureRejected) as refused:
        plant.complete("olivia", step2, "verify", {"verified": True}, "Verified")
    assert refused.value.code == "signature_four_eyes"
    assert plant.open_elements(step2) == ["verify"]
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    assert plant.status(step2) == InstanceStatus.COMPLETED


def test_equipment_of_the_wrong_class_or_unknown_is_refused_before_the_signature(plant: Plant) -> None:
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    step2 = plant.step("B-1", 2)
    with pytest.raises(EntryRefused) as refused:
        plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-NOWHERE")
    assert (refused.value.code, list(refused.value.errors)) == ("equipment_not_registered", ["equipment_id"])
    assert "not registered" in refused.value.message
    assert plant.open_elements(step2) == ["perform"]  # still open: nothing signed, nothing stored
    assert plant.engine.list_signatures(instance_id=step2) == []
    plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")
    assert plant.open_elements(step2) == ["verify"]
    [attempt] = plant.engine.pack(GmpServices).batch_record("B-1")["steps"][1]["refused_attempts"]
    assert (attempt["by"], attempt["code"]) == ("olivia", "equipment_not_registered")


def test_a_correction_needs_a_reason_and_a_signature(plant: Plant) -> None:
    plant.start_batch()
    step1 = plant.perform("olivia", "B-1", 1, {"weight": 5.0})
    with pytest.raises(ValidationFailed) as refused:
        plant.complete("olivia", step1, "confirm_value",
                       {"out_of_limit_action": "correct",
                        "corrected_values": [{"name": "weight", "value": 0.5}]},
                       "Performed")
    assert refused.value.code == "guard_failed"
    with pytest.raises(SignatureRejected):
        plant.complete("olivia", step1, "confirm_value",
                       {"out_of_limit_action": "correct", "correction_reason": "typo",
                        "corrected_values": [{"name": "weight", "value": 0.5}]})
    assert plant.open_elements(step1) == ["confirm_value"]


def test_a_hold_stops_the_batch_until_qa_decides(plant: Plant) -> None:
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    step2 = plant.perform("olivia", "B-1", 2, {**GRANULATE, "moisture": 3.5}, equipment="EQ-GRAN-01")
    plant.complete("olivia", step2, "confirm_value", {"out_of_limit_action": "confirm",
                                                     "deviation_description": "far too wet",
                                                     "immediate_action": "granulator stopped"}, "Performed")
    plant.complete("sam", step2, "assess_deviation", {"classification": "major",
                                                     "assessment_decision": "hold",
                                                     "assessment_comment": "QA to decide"}, "Reviewed")
    assert plant.open_elements(step2) == ["qa_hold_decision"]
    assert plant.engine.list_instances(key="sop_step", business_key="B-1/00003")[1] == 0  # nothing goes on
    plant.complete("quinn", step2, "qa_hold_decision",
                   {"hold_decision": "resume", "hold_reason": "dried, retested"}, "Approved")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    assert plant.engine.list_instances(key="sop_step", business_key="B-1/00003")[1] == 1


def test_a_new_sop_version_made_effective_mid_batch_does_not_change_the_batch(plant: Plant) -> None:
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    changed = {**SOP, "steps": [*SOP["steps"][:2], {**SOP["steps"][2], "instruction": "Blend longer.",
                                                   "parameters": [{**SOP["steps"][2]["parameters"][0],
                                                                   "target": 20, "low": 19, "high": 21}]}]}
    engine = plant.engine
    draft = engine.masterdata.new_draft(plant.people["ada"].actor, "recipe", SOP_KEY, changed)
    engine.masterdata.submit(plant.people["ada"].actor, "recipe", SOP_KEY, draft.number)
    engine.masterdata.make_effective(plant.people["ada"].actor, draft.id, None, None)
    assert plant.engine.masterdata.effective_at("recipe", SOP_KEY).number == 2
    step2 = plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    step3 = plant.step("B-1", 3)
    variables = plant.engine.instance_detail(step3)["variables"]
    assert variables["step"]["instruction"] == "Blend for the set time."  # version 1, pinned at release
    plant.perform("oscar", "B-1", 3, {"blend time": 10})  # within version 1's limits (version 2 would refuse)
    assert plant.open_elements(step3) == []
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["sop"]["version"] == 1 and record["exceptions"] == []


@pytest.mark.parametrize("name", ["sop_step", "sop_execution", "batch_release", "sop_correction"])
def test_the_models_lint_clean_and_every_element_has_a_diagram_shape(plant: Plant, name: str) -> None:
    from lxml import etree

    from tests.batch_support import PROCESSES

    [folder] = [p for p in PROCESSES if p.name == name]
    assert plant.engine.lint([folder]) == []
    tree = etree.parse(str(folder / f"{name}.bpmn"))
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
    process = tree.find("bpmn:process", ns)
    elements = {e.get("id") for e in process if e.get("id") and not e.tag.endswith("laneSet")}
    elements |= {lane.get("id") for lane in process.iterfind(".//bpmn:lane", ns)}
    drawn = {d.get("bpmnElement") for d in tree.iterfind(".//bpmndi:BPMNShape", ns)}
    drawn |= {d.get("bpmnElement") for d in tree.iterfind(".//bpmndi:BPMNEdge", ns)}
    assert elements - drawn == set()


def test_a_connector_incident_is_in_the_batch_record_with_its_resolution(plant: Plant) -> None:
    batch = plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    step2 = plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    plant.simulator.counterpart.fail_next = 100  # the ERP is down
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": 1000}, "Performed")
    for _ in range(4):
        plant.clock.advance(seconds=30)
        plant.run_jobs()
    assert plant.status(batch) == InstanceStatus.FAILED
    [incident] = plant.engine.list_incidents()
    open_record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert [e["kind"] for e in open_record["exceptions"]] == ["unresolved_incident"]
    plant.simulator.counterpart.fail_next = 0
    plant.engine.retry_incident(plant.people["ada"].actor, incident.id, "ERP back up")
    plant.run_jobs()
    assert plant.status(batch) == InstanceStatus.COMPLETED
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["exceptions"] == []
    [listed] = record["incidents"]
    assert listed["element_id"] == "report_production" and listed["resolution_reason"] == "ERP back up"
    assert plant.simulator.counterpart.orders["MO-1"]["produced_quantity"] == 1000


def needs_weighing(plant: Plant) -> None:
    """Step 1 of the SOP now needs the qualification 'weighing', which olivia holds and oscar does not."""
    engine, admin = plant.engine, plant.people["ada"].actor
    qualified = {**SOP, "steps": [{**SOP["steps"][0], "required_qualification": "weighing"},
                                  *SOP["steps"][1:]]}
    draft = engine.masterdata.new_draft(admin, "recipe", SOP_KEY, qualified)
    engine.masterdata.submit(admin, "recipe", SOP_KEY, draft.number)
    plant.sop = engine.masterdata.make_effective(admin, draft.id, None, None)
    effective(engine, "personnel_qualification", "olivia.weighing",
              {"person": "olivia", "qualification": "weighing", "valid_until": "2026-12-31"})


def test_an_unqualified_operator_can_neither_claim_nor_complete_a_step_and_leaves_no_attempt(
        plant: Plant) -> None:
    needs_weighing(plant)
    plant.start_batch()
    step1 = plant.step("B-1", 1)
    task = plant.task("oscar", step1, "perform")
    audit_before = len(plant.engine.audit_events(object_type="task", object_id=str(task.id)))
    api = ApiCaller(plant.engine, "qualification", PASSWORD)
    claimed = api("POST", f"/api/v1/tasks/{task.id}/claim", "oscar")
    assert (claimed.status_code, claimed.json["code"]) == (403, "not_permitted")
    assert "needs the qualification 'weighing'" in claimed.json["detail"]
    with pytest.raises(PermissionDenied) as completed:
        plant.perform("oscar", "B-1", 1, {"weight": 0.5})
    assert completed.value.code == "not_permitted" and "'weighing'" in completed.value.message
    assert plant.task("oscar", step1, "perform").state == "open"  # not claimed, nothing entered or signed
    refusals = plant.engine.audit_events(object_type="task", object_id=str(task.id))
    assert [e.action for e in refusals[audit_before:]] == ["task.claim_refused", "task.complete_refused"]
    assert plant.engine.list_signatures(step1) == []
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    assert plant.status(step1) == InstanceStatus.COMPLETED
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    step = record["steps"][0]
    assert step["performed"]["by"] == "olivia" and step["attempts"] == 1
    assert step["qualification"]["record"]["key"] == "olivia.weighing"
    assert "oscar" not in record["participants"]  # a refused attempt takes no part: oscar may still witness


def test_an_operator_whose_attempt_was_sent_back_may_still_witness_the_accepted_entry(plant: Plant) -> None:
    """The demo has two operators: oscar's incomplete entry of the critical step is sent back, olivia performs
    it again, and oscar — not the performer of the entry that stands — verifies it; the batch does not get
    stuck."""
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    step2 = plant.perform("oscar", "B-1", 2, {"impeller speed": 200}, equipment="EQ-GRAN-01")  # no moisture
    assert plant.open_elements(step2) == ["perform"]
    assert "No value for moisture." in plant.engine.instance_detail(step2)["variables"]["entry_errors"]
    plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")
    with pytest.raises(SignatureRejected) as own:
        plant.complete("olivia", step2, "verify", {"verified": True}, "Verified")
    assert own.value.code == "signature_four_eyes"
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    assert plant.status(step2) == InstanceStatus.COMPLETED
    step = plant.engine.pack(GmpServices).batch_record("B-1")["steps"][1]
    assert (step["performed"]["by"], step["verified"]["by"], step["attempts"]) == ("olivia", "oscar", 2)


def test_late_signatures_and_calibration_lapsed_during_the_batch_are_exceptions(plant: Plant) -> None:
    engine, admin = plant.engine, plant.people["ada"].actor
    due_tomorrow = {**json.loads(json.dumps(engine.masterdata.effective_at("equipment", "EQ-GRAN-01").data)),
                    "calibration_due": (plant.clock.now() + timedelta(days=1)).date().isoformat()}
    draft = engine.masterdata.new_draft(admin, "equipment", "EQ-GRAN-01", due_tomorrow)
    engine.masterdata.submit(admin, "equipment", "EQ-GRAN-01", draft.number)
    engine.masterdata.make_effective(admin, draft.id, None, None)
    batch = plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    step2 = plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")  # calibrated today
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.clock.advance(days=2)  # step 3 is signed two days after it opened, after the calibration lapsed
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": 1000}, "Performed")
    release = plant.instance("batch_release", "B-1")
    variables = plant.engine.instance_detail(release)["variables"]
    assert sorted(variables["exception_kinds"]) == ["calibration_lapsed", "late_signature"]
    assert sorted((e["kind"], e["step"]) for e in variables["exceptions"]) == [
        ("calibration_lapsed", 2), ("late_signature", 3)]


def test_a_batch_record_holds_only_its_own_steps_whatever_characters_the_batch_id_has(plant: Plant) -> None:
    plant.start_batch("BX1", "MO-2")
    plant.start_batch("B_1", "MO-3")  # '_' would match any character in a LIKE pattern
    record = plant.engine.pack(GmpServices).batch_record("B_1")
    assert [s["instance_id"] for s in record["steps"]] == [plant.step("B_1", 1)]


@pytest.mark.parametrize(("sop_allows_hours", "signed_after_hours", "late"), [
    (None, 3, False),  # the recipe schema's default: 8 h
    (2, 3, True),
    (12, 9, False),
    (None, 9, True),
])
def test_the_sop_says_how_late_a_step_may_be_signed(plant: Plant, sop_allows_hours: float | None,
                                                     signed_after_hours: float, late: bool) -> None:
    if sop_allows_hours is not None:  # the data steward's change, under change control in production
        admin = plant.people["ada"].actor
        draft = plant.engine.masterdata.new_draft(admin, "recipe", SOP_KEY,
                                                  {**SOP, "late_signature_hours": sop_allows_hours})
        plant.engine.masterdata.submit(admin, "recipe", SOP_KEY, draft.number)
        plant.sop = plant.engine.masterdata.make_effective(admin, draft.id, None, None)
    plant.start_batch()
    plant.clock.advance(hours=signed_after_hours)
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["sop"]["late_signature_hours"] == (sop_allows_hours or 8)
    assert record["steps"][0]["signing_delay_hours"] == signed_after_hours
    assert [(e["kind"], e["step"]) for e in record["exceptions"]] == ([("late_signature", 1)] if late else [])


def test_a_recorded_value_is_corrected_later_with_reason_signature_and_a_second_persons_approval(
        plant: Plant) -> None:
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01")
    correction = plant.engine.start_instance(plant.people["olivia"].actor, "sop_correction", "B-1",
                                             {"batch_id": "B-1"}).id
    request = {"step_number": 1, "parameter": "weight", "new_value": 0.502}
    with pytest.raises(ValidationFailed):  # no reason
        plant.complete("olivia", correction, "request_correction", request, "Performed")
    with pytest.raises(SignatureRejected):  # no signature
        plant.complete("olivia", correction, "request_correction",
                       {**request, "correction_reason": "printout 0.502"})
    plant.complete("olivia", correction, "request_correction",
                   {**request, "correction_reason": "printout 0.502"}, "Performed")
    assert plant.open_elements(correction) == ["approve_correction"]
    assert plant.engine.instance_detail(correction)["variables"]["correction"]["current_value"] == 0.5
    plant.complete("sam", correction, "approve_correction", {"correction_decision": "approve"}, "Approved")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    weight = record["steps"][0]["parameters"][0]
    assert (weight["value"], weight["first_entry"]) == (0.502, 0.5)  # the old value stays visible
    [listed] = record["corrections"]
    assert (listed["old_value"], listed["new_value"], listed["reason"], listed["by"]) == (
        0.5, 0.502, "printout 0.502", "olivia")
    assert listed["approved"]["by"] == "sam" and listed["signatures"][0]["meaning"] == "Performed"
    assert [e["kind"] for e in record["exceptions"]] == ["correction"]
    assert any(e["action"] == "task.completed"
               and (e["after"] or {}).get("data", {}).get("new_value") == 0.502
               for e in record["audit_trail"])


def test_a_correction_of_a_step_not_performed_goes_back_and_a_rejected_one_changes_nothing(
        plant: Plant) -> None:
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5})
    correction = plant.engine.start_instance(plant.people["olivia"].actor, "sop_correction", "B-1",
                                             {"batch_id": "B-1"}).id
    plant.complete("olivia", correction, "request_correction",
                   {"step_number": 3, "parameter": "blend time", "new_value": 10,
                    "correction_reason": "typo"},
                   "Performed")
    assert plant.open_elements(correction) == ["request_correction"]
    assert "not been performed" in (
        plant.engine.instance_detail(correction)["variables"]["correction"]["reason"])
    plant.complete("olivia", correction, "request_correction",
                   {"step_number": 1, "parameter": "weight", "new_value": 0.6, "correction_reason": "typo"},
                   "Performed")
    with pytest.raises(ValidationFailed):  # the meaning must match the decision
        plant.complete("sam", correction, "approve_correction", {"correction_decision": "reject"}, "Approved")
    plant.complete("sam", correction, "approve_correction", {"correction_decision": "reject"}, "Rejected")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["steps"][0]["parameters"][0]["value"] == 0.5 and record["corrections"] == []
