"""Review by exception comes from the model: ``release_exceptions.dmn`` decides from the batch's facts which
are exceptions, of which kind and how severe; a new kind is an edit of the DMN alone, and QA cannot release
while a blocking exception stands (nothing is stored by the refused decision).

Over the batch-release world of ``tests/batch_support`` (real accounts, real ERP/MES simulator); every
scenario runs with and without save-and-reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import ValidationFailed
from engine.states import InstanceStatus
from gmp import batch_exceptions
from gmp.processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED
from gmp.processes.sop_execution.test_sop_execution import GRANULATE, run_batch
from gmp.services import GmpServices
from tests.batch_support import Plant
from tests.conftest import ADMIN, ROOT

NEW_RULE = """      <rule id="r_corrections_need_qa_look">
        <description>Site rule 2026-07: a corrected value needs a QA look at the raw data</description>
{inputs}
        <outputEntry id="r_new_kind"><text>"corrected_value_raw_data"</text></outputEntry>
        <outputEntry id="r_new_severity"><text>"blocking"</text></outputEntry>
        <outputEntry id="r_new_evidence"><text>"corrections"</text></outputEntry>
      </rule>
    </decisionTable>"""


def deploy_release_with_new_rule(plant: Plant, folder: Path) -> None:
    """A copy of processes/batch_release whose DMN has one more rule, deployed as the next version."""
    shutil.copytree(ROOT / "gmp" / "processes" / "batch_release", folder,
                    ignore=shutil.ignore_patterns("*.py", "__*"))
    dmn = folder / "release_exceptions.dmn"
    inputs = "\n".join(f'        <inputEntry id="r_new_{fact}">'
                       f'<text>{"&gt; 0" if fact == "corrections" else "-"}</text></inputEntry>'
                       for fact in [*batch_exceptions.FACTS, *batch_exceptions.FLAGGED])
    dmn.write_text(dmn.read_text().replace("    </decisionTable>", NEW_RULE.format(inputs=inputs)))
    deployment, _ = plant.engine.deploy(ADMIN, [folder])
    assert deployment.version == 2 and deployment.status == "active"


def test_the_dmn_decides_kind_severity_and_evidence_of_each_exception(plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    exceptions = plant.engine.instance_detail(release)["variables"]["exceptions"]
    by_kind = {(e["kind"], e["step"]): e for e in exceptions}
    deviation = by_kind[("deviation", 2)]
    assert (deviation["severity"], deviation["blocking"]) == ("blocking", True)
    assert deviation["rule"] == "r_open_deviation"
    assert "not closed" in deviation["why"] and "granulate too wet" in deviation["text"]
    correction = by_kind[("correction", 1)]
    assert (correction["severity"], correction["blocking"]) == ("minor", False)
    assert correction["fact"] == "corrections"
    assert "typed 5.0 for 0.50" in correction["text"]
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["facts"]["open_deviations"] == 1 and record["facts"]["corrections"] == 1
    assert record["exceptions"] == exceptions


def test_a_new_exception_kind_is_a_dmn_edit_alone_and_blocks_the_release(plant: Plant,
                                                                         tmp_path: Path) -> None:
    deploy_release_with_new_rule(plant, tmp_path / "batch_release")
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    variables = plant.engine.instance_detail(release)["variables"]
    assert "corrected_value_raw_data" in variables["exception_kinds"]
    [new] = [e for e in variables["exceptions"] if e["kind"] == "corrected_value_raw_data"]
    assert (new["step"], new["blocking"], new["rule"]) == (1, True, "r_corrections_need_qa_look")
    assert "typed 5.0 for 0.50" in new["text"] and "raw data" in new["why"]
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert any(e["kind"] == "corrected_value_raw_data" for e in record["exceptions"])

    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")  # the deviation no longer blocks:
    audit_before = plant.engine.verify_audit().checked
    with pytest.raises(ValidationFailed) as refused:
        plant.complete("quinn", release, "decide",
                       {"disposition": "released", "decision_reason": "fine"}, "Released")
    assert refused.value.code == "guard_failed" and "blocking exception" in refused.value.message
    assert plant.engine.verify_audit().checked == audit_before  # the refusal stored nothing
    assert plant.open_elements(release) == ["decide"] and plant.status(release) != InstanceStatus.COMPLETED
    # what a blocking exception leaves QA: reject or quarantine
    plant.complete("quinn", release, "decide",
                   {"disposition": "quarantined", "decision_reason": "raw data check"}, "Quarantined")
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "quarantined"


def test_a_closed_deviation_no_longer_blocks_and_the_batch_is_released(plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    rechecked = plant.engine.instance_detail(release)["variables"]["exceptions"]
    [deviation] = [e for e in rechecked if e["kind"] == "deviation"]
    assert (deviation["severity"], deviation["blocking"]) == ("major", False)  # closed: reviewed, no block
    plant.complete("quinn", release, "decide",
                   {"disposition": "released", "decision_reason": "closed"}, "Released")
    assert plant.status(release) == InstanceStatus.COMPLETED


def test_a_resumed_hold_and_a_deviation_closed_with_its_capa_open_are_exceptions_the_models_flag(
        plant: Plant) -> None:
    """Overrides and open CAPA are flagged by the models (``exception.fact`` on qa_hold_decision and
    close_deviation) and judged by the DMN (rules r_override, r_open_capa): major, QA may still release."""
    plant.start_batch()
    plant.perform("olivia", "B-1", 1, {"weight": 0.5},
                  materials=[{"material": "MAT-PARACETAMOL", "lot": "L-PARA-7", "quantity": 0.5,
                              "unit": "kg"}])
    step2 = plant.perform("olivia", "B-1", 2, {**GRANULATE, "moisture": 3.5}, equipment="EQ-GRAN-01",
                          materials=[{"material": "MAT-LACTOSE", "lot": "L-LAC-3", "quantity": 0.15,
                                      "unit": "kg"}])
    plant.complete("olivia", step2, "confirm_value", {"out_of_limit_action": "confirm",
                                                     "deviation_description": "far too wet",
                                                     "immediate_action": "granulator stopped"}, "Performed")
    plant.complete("sam", step2, "assess_deviation", {"classification": "major",
                                                     "assessment_decision": "hold",
                                                     "assessment_comment": "QA to decide"}, "Reviewed")
    assert plant.engine.pack(GmpServices).batch_record("B-1")["facts"]["overrides"] == 0  # held, not resumed
    plant.complete("quinn", step2, "qa_hold_decision",
                   {"hold_decision": "resume", "hold_reason": "dried, retested"}, "Approved")
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("oscar", "B-1", 3, {"blend time": 10})
    plant.complete("olivia", plant.instance("sop_execution", "B-1"), "record_yield",
                   {"produced_quantity": 990}, "Performed")
    release = plant.instance("batch_release", "B-1")
    [override] = [e for e in plant.engine.pack(GmpServices).batch_record("B-1")["exceptions"]
                  if e["kind"] == "override"]
    assert (override["step"], override["severity"], override["rule"], override["by"]) == (
        2, "major", "r_override", "quinn")
    assert "the held batch was resumed: dried, retested" in override["text"]
    assert "Quinn Example" in override["text"]

    plant.complete("rita", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("rita", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("rita", release, "close_deviation", {**CLOSE, "capa_status": "open"}, "Approved")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["facts"]["open_capas"] == 1
    assert record["deviations"][0]["closure"]["capa_status"] == "open"
    [capa] = [e for e in record["exceptions"] if e["kind"] == "open_capa"]
    assert (capa["severity"], capa["blocking"], capa["rule"]) == ("major", False, "r_open_capa")
    assert "deviation DEV-B-1/00002 was closed while its CAPA CAPA-2026-014 is still open" in capa["text"]
    plant.complete("rita", release, "decide", {"disposition": "released", "decision_reason": "CAPA tracked"},
                   "Released")
    assert plant.status(release) == InstanceStatus.COMPLETED


def test_a_deviation_closed_with_its_capa_done_is_no_open_capa(plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", {**CLOSE, "capa_status": "done"}, "Approved")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert (record["facts"]["open_capas"], record["facts"]["overrides"]) == (0, 0)
    assert not [e for e in record["exceptions"] if e["kind"] in ("open_capa", "override")]
