"""Files stay standard BPMN 2.0, in Debian's Chromium: a file that the desktop Camunda Modeler produced
(``tests/bpmn/camunda_modeler``, see its README) opens in our modeler from disk, the engine names what it
cannot run, the process owner fixes that with the modeler's own tools, and the saved draft keeps every Camunda
extension of the elements it kept, and validates against the OMG BPMN 2.0 schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import SpiffWorkflow.bpmn.parser
from lxml import etree

from engine.definitions.bundle import Bundle
from tests.conftest import ADMIN, FIXTURES
from tests.web.conftest import Live, login, shot
from tests.web.test_modeler_files import FINDINGS

pytestmark = pytest.mark.xdist_group("browser")
CAMUNDA_FILE = FIXTURES / "camunda_modeler" / "invoice.v2.bpmn"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "camunda": CAMUNDA,
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
# the OMG's BPMN 2.0 XSD (BPMN20.xsd with Semantic, BPMNDI, DI and DC), as SpiffWorkflow ships it
BPMN_XSD = Path(SpiffWorkflow.bpmn.parser.__file__).parent / "schema" / "BPMN20.xsd"
ROLES = {"Approver": "qa", "teamAssistant": "operator", "Accountant": "supervisor"}
CONDITIONS = {"invoiceApproved": "approved == True", "invoiceNotApproved": "approved != True",
              "clarificationSuccessful": "clarified == True",
              "clarificationNotSuccessful": "clarified != True"}
# Camunda-only behaviour becomes a person's step
REPLACED = {"assignApprover": "replace-with-user-task", "archiveInvoice": "replace-with-task",
            "invoiceClarification": "replace-with-user-task"}
REMOVED = {"DataStoreReference_1", "Association_1"}


def camunda_attributes(root: Any) -> dict[str, dict[str, str]]:
    return {el.get("id"): {k: v for k, v in el.attrib.items() if k.startswith(f"{{{CAMUNDA}}}")}
            for el in root.iter() if isinstance(el.tag, str) and el.get("id")}


def pick(page: Any, element_id: str) -> None:
    """Select an element through the engine's finding that names it (the modeler selects and scrolls to
    it)."""
    page.locator(f"#problems li[data-element-id='{element_id}'] button").click()
    page.wait_for_selector(f"#props-body[data-element='{element_id}']")


def test_a_camunda_modeler_file_opens_from_disk_is_fixed_in_the_browser_and_saves_with_its_extensions(
        page: Any, live: Live) -> None:
    original = etree.parse(str(CAMUNDA_FILE)).getroot()
    login(page, live, "pete")
    page.get_by_role("link", name="Models").click()
    page.locator("#open-files").get_by_label("Files").set_input_files(str(CAMUNDA_FILE))
    page.get_by_role("button", name="Open in the modeler").click()
    page.wait_for_selector("body[data-modeler-ready=true]")
    assert page.locator(".djs-element[data-element-id=approveInvoice]").count() == 1  # bpmn-js drew the file
    assert not [d for d in live.engine.definitions() if d.key == "invoice"]  # opening stores nothing

    page.get_by_role("button", name="Check").click()
    page.wait_for_selector("body[data-lint=problems]")
    found = page.locator("#problems li").evaluate_all("items => items.map(li => li.dataset.elementId)")
    assert sorted(found) == sorted(FINDINGS)  # one finding per part gmpflow cannot run, each on its element
    assert page.locator(".djs-element.gmp-lint-error").count() == len(FINDINGS)
    assert "'${approved}' is a Camunda expression" in page.locator("#problems").inner_text()
    shot(page, "camunda-file-findings")

    for lane, role in ROLES.items():  # lanes name gmpflow roles
        pick(page, lane)
        page.get_by_label("Name").fill(role)
        page.get_by_label("Name").press("Tab")
    for flow, condition in CONDITIONS.items():  # conditions in Python, in our panel
        pick(page, flow)
        page.get_by_label("Condition").fill(condition)
        page.get_by_label("Condition").press("Tab")
    pick(page, "DataStoreReference_1")
    page.locator(".djs-context-pad .entry[data-action=delete]").click()
    for element, entry in REPLACED.items():  # bpmn-js's own "Change element" menu
        pick(page, element)
        page.locator(".djs-context-pad .entry[data-action=replace]").click()
        page.locator(f".djs-popup .entry[data-id={entry}]").click()
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_selector("body[data-saved]")
    shot(page, "camunda-file-saved-as-draft")

    view = live.engine.modeler_view(int(page.locator("body").get_attribute("data-saved")))
    assert (view["deployment"].key, view["deployment"].status) == ("invoice", "draft")
    text = view["files"]["bpmn"]["invoice.v2.bpmn"]
    assert live.engine.lint_bundle(Bundle({"invoice.v2.bpmn": text})) == []
    saved = etree.fromstring(text.encode())
    etree.XMLSchema(etree.parse(str(BPMN_XSD))).assertValid(saved)  # standard BPMN 2.0, by the OMG's schema

    before, after = camunda_attributes(original), camunda_attributes(saved)
    changed = set(REPLACED) | REMOVED
    kept = {el.get("id") for el in original.iter() if isinstance(el.tag, str) and el.get("id")
            and el.get("id") not in changed and el.get("bpmnElement") not in changed}
    assert kept <= set(after)  # every other element kept its id
    assert {i: after[i] for i in kept} == {i: before[i] for i in kept}  # and its camunda: attributes
    # (they are there)
    assert before["approveInvoice"][f"{{{CAMUNDA}}}candidateGroups"] == "${approverGroups}"
    listeners = saved.xpath(
        "//bpmn:userTask[@id='approveInvoice']/bpmn:extensionElements/camunda:taskListener", namespaces=NS)
    assert [(t.get("event"), t.findtext("camunda:script", namespaces=NS)) for t in listeners] == [
        (t.get("event"), t.findtext("camunda:script", namespaces=NS)) for t in original.xpath(
            "//bpmn:userTask[@id='approveInvoice']/bpmn:extensionElements/camunda:taskListener",
            namespaces=NS)]
    assert saved.xpath("//bpmn:userTask[@id='prepareBankTransfer']/bpmn:documentation/text()",
                       namespaces=NS) == ["Prepare the bank transfer."]
    assert saved.xpath("//bpmn:lane/@name", namespaces=NS) == ["qa", "operator", "supervisor"]
    assert saved.xpath("//bpmn:sequenceFlow[@id='invoiceApproved']/bpmn:conditionExpression/@id",
                       namespaces=NS) == ["conditionExpression_63"]  # the expression edited in place
    drawn = set(saved.xpath("//bpmndi:*/@bpmnElement", namespaces=NS))
    assert kept & set(original.xpath("//bpmndi:*/@bpmnElement", namespaces=NS)) <= drawn  # the diagram too
    # who wrote it last
    assert (saved.get("exporter"), saved.get("exporterVersion")) == ("gmpflow modeler", "1")
    # bpmn-js, the library the desktop Camunda Modeler is built on, reads the saved file without a warning
    warnings = page.evaluate("async (xml) => (await new window.GmpflowModeler.Modeler().importXML(xml))"
                             ".warnings.map((w) => w.message)", text)
    assert warnings == []

    # and it runs
    live.engine.activate_deployment(ADMIN, view["deployment"].id, "test: change control approved")
    started = live.engine.start_instance(ADMIN, "invoice", "INV-1", {})
    assert [(t.element_id, t.lane) for t in live.engine.instance_detail(started.id)["tasks"]] == [
        ("assignApprover", "operator")]
