"""Locked after disposition (issue 14, point 5): once QA released or rejected a batch, nothing reaches its
record — no step completion, correction, deviation or late entry, by task, message or start — except the
governed reopen (``processes/batch_reopen``): a reopen QA approves with a signature puts the batch back under
review, tells the ERP and needs a new QA disposition. The record, its copies and the batch pages show every
disposition and reopen.

Over the batch-release world of ``tests/batch_support`` (real ERP/MES simulator, real accounts); refusals
through the REST API with the stored state and the audit trail compared before and after."""

from __future__ import annotations

from typing import Any

import pytest

from engine.audit import Actor
from engine.errors import Conflict, SignatureRejected
from engine.states import InstanceStatus
from gmp.processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED, pdf_text, reviewed
from gmp.services import GmpServices
from tests.batch_support import PASSWORD, Plant
from tests.hostile_support import snapshot
from tests.session_support import ApiCaller, browser_session
from webapp import create_app

REASON = "printout found late"
CORRECTION = {"step_number": 1, "parameter": "weight", "new_value": 0.502, "correction_reason": "printout"}


def released(plant: Plant, disposition: str = "released") -> int:
    """The batch of ``run_batch`` reviewed, its deviation closed and dispositioned by quinn (qa)."""
    release = reviewed(plant)
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    plant.complete("quinn", release, "decide",
                   {"disposition": disposition, "decision_reason": "record complete"}, disposition.title())
    return release


def start_correction(plant: Plant) -> int:
    return plant.engine.start_instance(plant.people["olivia"].actor, "sop_correction", "B-1",
                                       {"batch_id": "B-1"}).id


def api_for(plant: Plant) -> ApiCaller:
    return ApiCaller(plant.engine, "batch-lock", PASSWORD)


# what would write to a released batch's record, each through the REST API by someone the model lets do it:
# (case, who, method, path, body)
LATE_WRITES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("a correction started", "sam", "POST", "/api/v1/process-definitions/sop_correction/instances",
     {"business_key": "B-1", "variables": {"batch_id": "B-1"}}),
    ("a correction opened before the release, completed after it", "olivia", "POST",
     "/api/v1/tasks/{open_correction}/complete",
     {"data": CORRECTION, "signature": {"username": "olivia", "password": PASSWORD, "meaning": "Performed"}}),
]
# the messages that would add to it: only the engine may send them (message.senders = engine), and the lock
# holds against the engine too: (case, name, correlation keys)
LATE_MESSAGES: list[tuple[str, str, dict[str, Any]]] = [
    ("a late step (and its deviation) started by message", "sop_step_requested",
     {"business_key": "B-1/00004"}),
    ("the batch started again by message", "batch_execution_requested", {"business_key": "B-1"}),
]


@pytest.mark.parametrize("reload", [False])
def test_after_release_every_late_write_to_the_batch_record_is_refused_record_locked(plant: Plant) -> None:
    release = reviewed(plant)
    correction = start_correction(plant)  # opened while the batch was still under review
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    plant.complete("quinn", release, "decide", {"disposition": "released", "decision_reason": "complete"},
                   "Released")
    # the instance that decided finished its own work under the lock: ERP and MES told, record archived
    assert plant.status(release) == InstanceStatus.COMPLETED
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "released"
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["disposition"]["status"], record["disposition"]["locked"]) == ("released", True)
    open_correction = plant.task("olivia", correction, "request_correction").id
    call = api_for(plant).sign_in(*{who for _, who, *_ in LATE_WRITES})
    for case, who, method, path, body in LATE_WRITES:
        before = snapshot(plant.database)
        answer = call(method, path.format(open_correction=open_correction), who, body)
        assert (answer.status_code, answer.json["code"]) == (409, "record_locked"), case
        assert answer.mimetype == "application/problem+json" and "B-1" in answer.json["detail"], case
        assert snapshot(plant.database) == before, case  # nothing stored, the audit trail unchanged
    for case, name, keys in LATE_MESSAGES:
        before = snapshot(plant.database)
        with pytest.raises(Conflict) as refused:
            plant.engine.correlate(Actor.system(), name, keys, {})
        assert refused.value.code == "record_locked", case
        assert snapshot(plant.database) == before, case
    assert plant.engine.pack(GmpServices).batch_record("B-1")["sha256"] == record["sha256"]


def test_a_quarantined_batch_stays_open_to_corrections(plant: Plant) -> None:
    release = reviewed(plant)
    plant.complete("quinn", release, "close_deviation",
                   {"deviation_id": CLOSE["deviation_id"], "closure": "keep_open"}, "Reviewed")
    plant.complete("quinn", release, "decide", {"disposition": "quarantined", "decision_reason": "open CAPA"},
                   "Quarantined")
    start_correction(plant)  # quarantine is no final disposition: the record stays open
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["disposition"]["status"], record["disposition"]["locked"]) == ("quarantined", False)


@pytest.mark.parametrize("reload", [False])
def test_a_rejected_batch_refuses_a_correction(plant: Plant) -> None:
    released(plant, "rejected")
    with pytest.raises(Conflict) as refused:
        start_correction(plant)
    assert refused.value.code == "record_locked"
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["disposition"]["status"], record["disposition"]["locked"]) == ("rejected", True)


def test_the_governed_reopen_puts_the_batch_under_review_tells_the_erp_and_needs_a_new_disposition(
        plant: Plant) -> None:
    first_release = released(plant)
    plant.clock.advance(hours=1)
    reopen = plant.engine.start_instance(plant.people["quinn"].actor, "batch_reopen", "B-1",
                                         {"batch_id": "B-1", "reopen_reason": REASON}).id
    plant.run_jobs()
    assert plant.open_elements(reopen) == ["approve_reopen"]
    with pytest.raises(Conflict):  # asked for, not approved: still locked
        start_correction(plant)
    with pytest.raises(SignatureRejected) as refused:  # who asked does not approve
        plant.complete("quinn", reopen, "approve_reopen", {"reopen_decision": "approve"}, "Approved")
    assert refused.value.code == "signature_four_eyes"
    plant.complete("rita", reopen, "approve_reopen",
                   {"reopen_decision": "approve", "approval_comment": "correct step 1"}, "Approved")
    assert plant.status(reopen) == InstanceStatus.COMPLETED
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["disposition"]["status"], record["disposition"]["locked"]) == ("under_review", False)
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "quarantined"  # the ERP was told
    releases, _ = plant.engine.list_instances(key="batch_release", business_key="B-1")
    new_release = max(r.id for r in releases)
    assert new_release != first_release and plant.open_elements(new_release) == ["review_record"]

    plant.clock.advance(hours=1)
    correction = start_correction(plant)  # the correction the reopen was for
    plant.complete("olivia", correction, "request_correction", CORRECTION, "Performed")
    plant.complete("sam", correction, "approve_correction", {"correction_decision": "approve"}, "Approved")
    plant.complete("quinn", new_release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", new_release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", new_release, "decide",
                   {"disposition": "released", "decision_reason": "corrected weight reviewed"}, "Released")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["disposition"]["status"], record["disposition"]["locked"]) == ("released", True)
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "released"
    events = record["disposition"]["events"]
    assert [(e["kind"], e.get("disposition") or e.get("decision"), e["by"], e["meaning"])
            for e in events] == [
        ("disposition", "released", "quinn", "Released"), ("reopen", "approve", "rita", "Approved"),
        ("disposition", "released", "quinn", "Released")]
    assert (events[1]["requested_by"], events[1]["reason"], events[1]["comment"]) == (
        "quinn", REASON, "correct step 1")
    assert events[0]["at"] < events[1]["at"] < events[2]["at"]
    gmp = plant.engine.pack(GmpServices)
    html, pdf = gmp.batch_record("B-1", "html"), pdf_text(gmp.batch_record("B-1", "pdf"))
    for fact in ("Reopen", REASON, "Rita Example", "corrected weight reviewed", record["sha256"]):
        assert fact in html and fact in pdf, fact
    with pytest.raises(Conflict):  # locked again by the new disposition
        start_correction(plant)


@pytest.mark.parametrize("reload", [False])
def test_the_batch_pages_show_every_disposition_and_reopen(plant: Plant) -> None:
    released(plant)
    reopen = plant.engine.start_instance(plant.people["quinn"].actor, "batch_reopen", "B-1",
                                         {"batch_id": "B-1", "reopen_reason": REASON}).id
    plant.run_jobs()
    plant.complete("rita", reopen, "approve_reopen", {"reopen_decision": "approve"}, "Approved")
    app = create_app({"SECRET_KEY": "batch-lock", "SESSION_COOKIE_SECURE": False}, engine=plant.engine)
    client = app.test_client()
    browser_session(app, client, plant.engine, "quinn")
    listing = client.get("/batches").get_data(as_text=True)
    review = client.get("/batches/B-1").get_data(as_text=True)
    for page in (listing, review):
        assert 'data-kind="disposition"' in page and 'data-kind="reopen"' in page
        assert "under review" in page and REASON in page and "Rita Example" in page and "Approved" in page
    assert plant.engine.pack(GmpServices).batch_record("B-1")["sha256"] in review


@pytest.mark.parametrize("reload", [False])
@pytest.mark.parametrize("decision", ["reject", "not locked"])
def test_a_reopen_refused_or_of_an_undecided_batch_changes_nothing(plant: Plant, decision: str) -> None:
    if decision == "reject":
        released(plant)
    else:
        reviewed(plant)
    reopen = plant.engine.start_instance(plant.people["quinn"].actor, "batch_reopen", "B-1",
                                         {"batch_id": "B-1", "reopen_reason": REASON}).id
    plant.run_jobs()
    if decision == "reject":
        plant.complete("rita", reopen, "approve_reopen", {"reopen_decision": "reject"}, "Rejected")
    else:  # nothing to reopen: a batch under review is corrected without one
        assert "not locked" in plant.engine.instance_detail(reopen)["variables"]["reopen"]["reason"]
    assert plant.status(reopen) == InstanceStatus.COMPLETED
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["disposition"]["locked"] is (decision == "reject")
    assert len(plant.engine.list_instances(key="batch_release", business_key="B-1")[0]) == 1


@pytest.mark.parametrize("reload", [False])
def test_a_reopen_under_another_business_key_cannot_unlock_the_batch(plant: Plant) -> None:
    released(plant)
    reopen = plant.engine.start_instance(plant.people["quinn"].actor, "batch_reopen", "B-other",
                                         {"batch_id": "B-1", "reopen_reason": REASON}).id
    plant.run_jobs()
    assert plant.open_elements(reopen) == [] and plant.status(reopen) == InstanceStatus.COMPLETED
    assert plant.engine.pack(GmpServices).batch_record("B-1")["disposition"]["locked"] is True


LINTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="lock_defs" targetNamespace="http://gmpflow.example/bpmn">
  <bpmn:process id="lock_lint" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="decide"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="signature.meaning" value="Released"/>
      <spiffworkflow:property name="{name}" value="{value}"/>
    </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide"/>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize(("name", "value", "refused"), [
    ("record.lock", "batch_id if disposition == 'released' else None", False),
    ("record.lock", "__import__('os')", True),
    ("record.unlock", "batch_id if (", True),
    ("signature.record", "batch:batch_id", False),
    ("signature.record", "batch_id", True),
    ("signature.record", "batch:", True),
    ("record.reopen", "yes", True),
])
def test_lint_checks_the_record_properties_of_a_model(engine: Any, name: str, value: str,
                                                      refused: bool) -> None:
    from engine.definitions.bundle import Bundle

    problems = engine.lint_bundle(Bundle({"lock_lint.bpmn": LINTED.format(name=name, value=value)}))
    assert [p.code for p in problems] == (["bad_record_property"] if refused else []), problems
