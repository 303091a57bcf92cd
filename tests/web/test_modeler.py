"""Browser journeys of the process owner's modeler and the per-version process overview (Debian's Chromium).

Each starts from the login page and saves screenshots under ``test-artifacts/web/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import SpiffWorkflow.dmn.parser
from lxml import etree

from engine.definitions.bundle import Bundle
from tests.web.conftest import Live, login, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server
# the OMG's, as Spiff ships it
DMN_XSD = Path(SpiffWorkflow.dmn.parser.__file__).parent / "schema" / "DMN13.xsd"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiff": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


def active_demo(live: Live) -> Any:
    return next(d for d in live.engine.definitions() if d.key == "demo_approval" and d.status == "active")


def modeler_ready(page: Any) -> None:
    page.wait_for_selector("body[data-modeler-ready=true]")


def properties(root: Any, element_id: str) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in root.xpath(
        f"//bpmn:*[@id='{element_id}']/bpmn:extensionElements/spiff:properties/spiff:property",
        namespaces=NS)}


def test_a_process_owner_edits_saves_a_draft_fixes_a_lint_problem_and_submits_it(page: Any,
                                                                                 live: Live) -> None:
    v1 = active_demo(live)
    login(page, live, "pete")
    page.get_by_role("link", name="Models").click()
    row = page.locator(f"section[data-process=demo_approval] tr[data-deployment-id='{v1.id}']")
    assert "active" in row.inner_text()
    shot(page, "modeler-process-list")
    row.get_by_role("link", name="Edit").click()
    modeler_ready(page)
    assert page.locator("#file-tabs [role=tab]").all_inner_texts() == [
        "demo_approval.bpmn", "demo_request.form", "demo_review.form"]

    page.locator(".djs-element.djs-shape[data-element-id=approve]").click()
    page.wait_for_selector("#props-body[data-element=approve]")
    page.get_by_label("Name").fill("Approve the request (QA)")
    page.get_by_label("Name").press("Tab")
    page.get_by_label("Form").select_option("demo_request")
    page.get_by_label("Four eyes: signer differs from").fill("performer:review")
    page.get_by_label("Four eyes: signer differs from").press("Tab")
    page.get_by_role("button", name="Save as draft").click()  # a four-eyes rule without a signature meaning
    page.wait_for_selector("body[data-saved=problems]")
    problem = page.locator("#problems li[data-element-id=approve]")
    assert "signature.meaning is not" in problem.inner_text()
    assert page.locator(".djs-element[data-element-id=approve].gmp-lint-error").count() == 1
    assert page.locator(".djs-overlay .lint-badge").count() == 1
    shot(page, "modeler-lint-problem-marked")
    assert [d.version for d in live.engine.definitions() if d.key == "demo_approval"] == [1]  # nothing stored

    page.get_by_label("Signature meaning").select_option("Approved")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_selector("body[data-saved]:not([data-saved=problems])")
    assert page.locator(".gmp-lint-error").count() == 0 and page.locator("#problems-card").is_hidden()
    draft_id = int(page.locator("body").get_attribute("data-saved"))
    view = live.engine.modeler_view(draft_id)
    draft, files = view["deployment"], {**view["files"]["bpmn"], **view["files"]["form"]}
    assert (draft.key, draft.version, draft.status) == ("demo_approval", 2, "draft")
    assert "draft" in page.locator("#save-status").inner_text()
    shot(page, "modeler-saved-draft")

    # the saved file is standard BPMN with our extensions intact and the ids unchanged
    saved = etree.fromstring(files["demo_approval.bpmn"].encode())
    original = etree.fromstring(
        live.engine.modeler_view(v1.id)["files"]["bpmn"]["demo_approval.bpmn"].encode())
    assert set(saved.xpath("//@id")) == set(original.xpath("//@id"))
    assert saved.get("exporter") == "gmpflow modeler"
    assert saved.xpath("//bpmn:userTask[@id='approve']/@name", namespaces=NS) == ["Approve the request (QA)"]
    assert properties(saved, "approve") == {"formId": "demo_request",
                                            "signature.distinctFrom": "performer:review",
                                            "signature.meaning": "Approved"}
    assert properties(saved, "request") == properties(original, "request")
    params = saved.xpath("//bpmn:serviceTask[@id='notify']/bpmn:extensionElements/spiff:serviceTaskOperator"
                         "/spiff:parameters/spiff:parameter", namespaces=NS)
    assert [(p.get("id"), p.get("type"), p.get("value")) for p in params] == [
        ("quantity", "int", "quantity"), ("comment", "str", "comment")]
    assert live.engine.lint_bundle(Bundle(files)) == []

    page.locator("#saved-version").click()
    modeler_ready(page)
    form = page.locator("#submit-form")
    form.get_by_label("Why it changes").fill("QA approves with a signature, four eyes.")
    form.get_by_label("Impact on the product").select_option("none")
    form.get_by_role("button", name="Submit for change control").click()
    page.wait_for_url(re.compile(rf".*/modeler/{draft_id}$"))
    assert "Change request #" in page.locator(".flash-success").inner_text()
    shot(page, "modeler-submitted-for-change-control")
    live.engine.run_jobs_once()
    assert live.engine.get_deployment(draft_id).status == "in_review"
    page.get_by_role("link", name="Process models").click()
    assert "in review" in page.locator(f"tr[data-deployment-id='{draft_id}']").inner_text()


def test_the_process_overview_shows_counts_per_element(page: Any, live: Live) -> None:
    v1 = active_demo(live)
    incident_instance = live.start("service_retry_incident", "OVR-ERP", who="ada", fail_times=3)
    for _ in range(10):
        live.engine.run_jobs_once()
        live.clock.advance(minutes=5)
    assert any(i.instance_id == incident_instance for i in live.engine.list_incidents())
    for n in range(3):
        live.start("demo_approval", f"OVR-{n}")
    expected = live.engine.deployment_overview(v1.id)["counts"]["request"]["tasks"]  # other journeys add some
    assert expected >= 3
    login(page, live, "ada")
    page.get_by_role("link", name="Models").click()
    page.locator(f"tr[data-deployment-id='{v1.id}']").get_by_role("link", name="Overview").click()
    page.wait_for_selector("#diagram[data-rendered=true]")
    badge = page.locator(".count-badges[data-element=request] .count-active")
    assert badge.inner_text() == str(expected)
    assert page.locator(".djs-element[data-element-id=request].gmp-active").count() == 1
    assert (page.locator("#element-counts tr[data-element=request]").inner_text().split("\t")[1]
            == str(expected))
    shot(page, "process-overview-counts")

    failing = next(d for d in live.engine.definitions() if d.key == "service_retry_incident")
    page.goto(f"{live.url}/processes/{failing.id}/overview")
    page.wait_for_selector("#diagram[data-rendered]", state="attached")
    assert page.locator("#total-incidents").inner_text() == "1"
    assert page.locator("#element-counts tr[data-element=post_to_erp]").inner_text().split("\t")[3] == "1"
    shot(page, "process-overview-incident")


def test_the_modeler_opens_a_bundles_dmn_table_and_forms_and_an_untouched_bundle_saves_nothing(
        page: Any, live: Live) -> None:
    cc = next(d for d in live.engine.definitions() if d.key == "change_control" and d.status == "active")
    login(page, live, "pete")
    page.goto(f"{live.url}/modeler/{cc.id}")
    modeler_ready(page)
    page.get_by_role("tab", name="classify_change.dmn").click()
    page.wait_for_selector(".editor-dmn .tjs-table, .editor-dmn .dmn-drd-container")
    shot(page, "modeler-dmn-editor")
    page.get_by_role("tab", name="change_impact.form").click()
    page.wait_for_selector(".editor-form .fjs-editor-container")
    assert page.locator("#props-panel").is_hidden()  # our BPMN panel only beside diagrams
    shot(page, "modeler-form-editor")
    page.get_by_role("tab", name="change_control.bpmn").click()
    page.locator(".djs-element.djs-shape[data-element-id=open_deployment]").click()
    page.wait_for_selector("#props-body[data-element=open_deployment]")
    assert page.get_by_label("Connector operation").input_value() == "change_request.open"
    assert page.get_by_label("Result variable").input_value() == "change"
    shot(page, "modeler-service-task-panel")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_selector("body[data-saved]")
    assert "Nothing changed" in page.locator("#save-status").inner_text()
    assert [d.version for d in live.engine.definitions() if d.key == "change_control"] == [cc.version]



def release_bundle(live: Live) -> Any:
    return next(d for d in live.engine.definitions() if d.key == "batch_release" and d.status == "active")


def save_draft(page: Any, live: Live) -> dict[str, Any]:
    """Click "Save as draft" and return the engine's view of the new draft version."""
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_selector("body[data-saved]:not([data-saved=problems])")
    assert "Saved as draft" in page.locator("#save-status").inner_text()
    return live.engine.modeler_view(int(page.locator("body").get_attribute("data-saved")))


def open_release_file(page: Any, live: Live, tab: str) -> Any:
    """As the process owner, open the active batch release in the modeler at one of its files; returns the
    deployment."""
    active = release_bundle(live)
    login(page, live, "pete")
    page.goto(f"{live.url}/modeler/{active.id}")
    modeler_ready(page)
    page.get_by_role("tab", name=tab).click()
    return active


def test_a_process_owner_edits_a_decision_table_cell_in_dmn_js_and_saves_a_draft(page: Any,
                                                                                 live: Live) -> None:
    active = open_release_file(page, live, "release_exceptions.dmn")
    cell = page.locator(".editor-dmn td[data-element-id=r_late_signature_kind] .content-editable")
    assert cell.inner_text().strip() == '"late_signature"'
    cell.click()  # dmn-js's own cell editor
    page.keyboard.press("Control+A")
    page.keyboard.type('"signed_late"')  # and save at once
    shot(page, "modeler-dmn-cell-edited")
    view = save_draft(page, live)
    assert (view["deployment"].key, view["deployment"].status) == ("batch_release", "draft")
    assert view["deployment"].version > active.version
    saved = etree.fromstring(view["files"]["dmn"]["release_exceptions.dmn"].encode())
    etree.XMLSchema(etree.parse(str(DMN_XSD))).assertValid(saved)  # still standard DMN 1.3
    assert saved.xpath("//*[@id='r_late_signature_kind']/*[local-name()='text']/text()") == ['"signed_late"']
    original = etree.fromstring(
        live.engine.modeler_view(active.id)["files"]["dmn"]["release_exceptions.dmn"].encode())
    assert set(saved.xpath("//@id")) == set(original.xpath("//@id"))  # one cell changed, no rule lost
    # untouched files as stored
    assert view["files"]["bpmn"] == live.engine.modeler_view(active.id)["files"]["bpmn"]


def test_a_process_owner_renames_a_field_in_the_form_js_editor_and_saves_a_draft(page: Any,
                                                                                 live: Live) -> None:
    active = open_release_file(page, live, "batch_review.form")
    page.locator(".editor-form .fjs-element", has_text="Review comment").last.click()
    panel = page.locator(".editor-form .fjs-properties-panel")  # the form-js editor's own properties panel
    panel.locator("[data-group-id=group-general] .bio-properties-panel-group-header").click()
    label = panel.locator("[data-entry-id=label] [contenteditable=true]")
    assert label.inner_text() == "Review comment"
    label.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Reviewer's comment")  # and save at once: no edit may wait in a debounce
    shot(page, "modeler-form-field-renamed")
    view = save_draft(page, live)
    form = json.loads(view["files"]["form"]["batch_review.form"])
    assert form["id"] == "batch_review"
    labels = {c.get("key"): c.get("label") for c in form["components"]}
    assert labels["review_comment"] == "Reviewer's comment"
    assert labels["record_reviewed"] == "I reviewed the exceptions and the batch record"
    assert view["deployment"].content_hash != active.content_hash  # a form change is a new version
