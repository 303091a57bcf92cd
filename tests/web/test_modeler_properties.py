"""The modeler's properties panel (bpmn-js-properties-panel with gmpflow's properties provider) in Debian's
Chromium: every model property the engine reads is edited in the panel and written as
``spiffworkflow:properties/spiffworkflow:property name value`` (as the hand-written panel did), each edit is
one command on bpmn-js's command stack (Ctrl+Z undoes it, Ctrl+Y redoes it), and the saved draft lints,
goes live and is enforced.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from lxml import etree
from playwright.sync_api import expect

from engine.authority import NotPermitted
from engine.definitions.bundle import Bundle
from tests.conftest import ADMIN
from tests.web.conftest import Live, login, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiff": "http://spiffworkflow.org/bpmn/schema/1.0/core"}
DEMO = "demo_approval.bpmn"


def active(live: Live, key: str) -> Any:
    return max((d for d in live.engine.definitions() if d.key == key and d.status == "active"),
               key=lambda d: d.version)


def open_modeler(page: Any, live: Live, key: str) -> Any:
    dep = active(live, key)
    login(page, live, "pete")
    page.goto(f"{live.url}/modeler/{dep.id}")
    page.wait_for_selector("body[data-modeler-ready=true]")
    return dep


def pick(page: Any, element_id: str, name: str = DEMO) -> None:
    """Select the element as a lint finding's link does (some sit under the palette, out of a click's
    reach)."""
    page.evaluate("([name, id]) => window.GmpflowModelerPage.select(name, id)", [name, element_id])
    page.wait_for_selector(f"#props-body[data-element='{element_id}']")


def field(page: Any, label: str) -> Any:
    return page.locator("#props-body").get_by_label(label, exact=True)


def type_in(page: Any, label: str, value: str) -> None:
    """Type into a panel field and leave it (the panel commits on blur)."""
    entry = field(page, label)
    entry.fill(value)
    entry.press("Tab")


def diagram(page: Any, name: str = DEMO) -> Any:
    """The diagram as bpmn-js would save it now."""
    xml = page.evaluate("async (name) => (await window.GmpflowModelerPage.editors[name].instance"
                        ".saveXML({format: true})).xml", name)
    return etree.fromstring(xml.encode())


def properties(root: Any, element_id: str) -> dict[str, str]:
    """The element's extension properties the way the engine reads them; every ``spiffworkflow:property``
    has exactly a name and a value (what the hand-written panel wrote)."""
    found = root.xpath(f"//bpmn:*[@id='{element_id}']/bpmn:extensionElements/spiff:properties/spiff:property",
                       namespaces=NS)
    assert all(sorted(p.attrib) == ["name", "value"] and p.prefix == "spiffworkflow" for p in found)
    return {p.get("name"): p.get("value") for p in found}


def test_a_property_edit_undoes_and_redoes_with_the_keyboard_and_the_deployed_draft_enforces_it(
        page: Any, live: Live) -> None:
    v1 = open_modeler(page, live, "demo_approval")
    pick(page, "start")
    assert field(page, "Who may start (roles)").input_value() == "operator"
    type_in(page, "Who may start (roles)", "qa")
    assert properties(diagram(page), "start") == {"start.roles": "qa"}

    field(page, "Start form").press("Control+z")  # in the panel: the panel hands it to the command stack
    expect(field(page, "Who may start (roles)")).to_have_value("operator")
    assert properties(diagram(page), "start") == {"start.roles": "operator"}

    page.locator(".djs-element[data-element-id=review]").click()  # on the diagram: bpmn-js's own keys
    page.keyboard.press("Control+y")
    pick(page, "start")
    expect(field(page, "Who may start (roles)")).to_have_value("qa")
    assert properties(diagram(page), "start") == {"start.roles": "qa"}
    shot(page, "modeler-panel-start-roles-redone")

    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_selector("body[data-saved]:not([data-saved=problems])")
    draft_id = int(page.locator("body").get_attribute("data-saved"))
    files = live.engine.modeler_view(draft_id)["files"]
    saved = files["bpmn"][DEMO]
    assert properties(etree.fromstring(saved.encode()), "start") == {"start.roles": "qa"}
    bundle = Bundle({**files["bpmn"], **files["form"]})
    assert live.engine.lint_bundle(bundle) == []
    # the rest of the file as it was
    original = live.engine.modeler_view(v1.id)["files"]["bpmn"][DEMO]
    assert saved.replace('"qa"', '"operator"').count("spiffworkflow:") == original.count("spiffworkflow:")

    live.engine.activate_deployment(ADMIN, draft_id, "the panel's edit goes live")
    engine = live.engine
    with pytest.raises(NotPermitted):
        engine.start_instance(engine.principal("olivia"), "demo_approval", "PANEL-1")  # operators no more
    started = engine.start_instance(engine.principal("quinn"), "demo_approval", "PANEL-2")
    assert started.deployment_id == draft_id


def test_every_task_property_is_written_as_the_engine_reads_it_and_one_undo_takes_back_one_edit(
        page: Any, live: Live) -> None:
    open_modeler(page, live, "demo_approval")
    pick(page, "review")
    written = {
        "Instructions (markdown)": ("instructions", "Check **both** numbers."),
        "Four eyes: signer differs from": ("signature.distinctFrom", "initiator, performer:request"),
        "Signed record": ("signature.record", "batch:batch_id"),
        "Qualification required": ("qualification.required", "'GMP basics'"),
        "Entry check": ("entry.check", "sop.entry_check"),
        "Guard": ("guard", "accepted in (True, False)"),
        "Guard message": ("guardMessage", "Decide."),
        "Locks the record": ("record.lock", "batch_id"),
        "Unlocks the record": ("record.unlock", "batch_id"),
        "Candidate roles": ("candidateRoles", "'qa'"),
        "Screen": ("screen", "ebr_step"),
    }
    for label, (_, value) in written.items():
        type_in(page, label, value)
    field(page, "Signature meaning").select_option("Reviewed")
    field(page, "Form").select_option("demo_request")
    expected = {name: value for name, value in written.values()}
    expected.update({"formId": "demo_request", "signature.meaning": "Reviewed"})
    assert properties(diagram(page), "review") == expected
    shot(page, "modeler-panel-every-task-property")

    field(page, "Form").press("Control+z")  # the last edit only
    expected["formId"] = "demo_review"
    assert properties(diagram(page), "review") == expected
    expect(field(page, "Form")).to_have_value("demo_review")

    type_in(page, "Screen", "")  # an emptied field removes its property
    del expected["screen"]
    assert properties(diagram(page), "review") == expected

    pick(page, "lane_qa")  # a lane names a role
    assert "only its holders may claim" in page.locator("#props-body").inner_text()
    type_in(page, "Name", "supervisor")
    assert diagram(page).xpath("//bpmn:lane[@id='lane_qa']/@name", namespaces=NS) == ["supervisor"]


def test_start_and_message_properties_of_a_message_start_event_are_written_as_the_engine_reads_them(
        page: Any, live: Live) -> None:
    open_modeler(page, live, "demo_approval")
    pick(page, "start")
    assert field(page, "Who may send the message (roles)").count() == 0  # a plain start event
    page.locator(".djs-context-pad .entry[data-action=replace]").click()  # bpmn-js's "Change element"
    page.locator(".djs-popup .entry[data-id=replace-with-message-start]").click()
    pick(page, "start")
    type_in(page, "Who may start (roles)", "operator, supervisor")
    field(page, "Start form").select_option("demo_request")
    field(page, "Reopens a locked record").select_option("true")
    type_in(page, "Who may send the message (roles)", "integration")
    type_in(page, "Message fields", "order_id, quantity")
    assert properties(diagram(page), "start") == {
        "start.roles": "operator, supervisor", "formId": "demo_request", "record.reopen": "true",
        "message.senders": "integration", "message.fields": "order_id, quantity"}


def test_the_other_properties_of_a_task_are_listed_changed_renamed_added_and_removed(page: Any,
                                                                                  live: Live) -> None:
    open_modeler(page, live, "batch_release")
    name = "batch_release.bpmn"
    task = diagram(page, name).xpath("//bpmn:userTask[.//spiff:property[@name='guard.same']]/@id",
                                     namespaces=NS)[0]
    before = properties(diagram(page, name), task)
    pick(page, task, name)
    others = page.locator("[data-group-id='group-gmpflow-other']")
    titles = others.locator(".bio-properties-panel-collapsible-entry-header-title")
    listed = set(titles.all_inner_texts())
    assert {"guard.same", "guardMessage.same"} <= listed  # the named ones have their own fields
    assert not listed & {"formId", "guard", "signature.meaning"}

    def item(title: str) -> Any:
        return others.locator(".bio-properties-panel-collapsible-entry").filter(
            has=page.locator(".bio-properties-panel-collapsible-entry-header-title", has_text=re.compile(
                f"^{re.escape(title)}$")))

    item("guard.same").locator(".bio-properties-panel-collapsible-entry-header").click()
    value = item("guard.same").get_by_label("Property value", exact=True)
    value.fill("True")
    value.press("Tab")
    renamed = item("guardMessage.same").locator(".bio-properties-panel-collapsible-entry-header")
    renamed.click()
    label = item("guardMessage.same").get_by_label("Property name", exact=True)
    label.fill("guardMessage.twice")
    label.press("Tab")
    item("guard.closure").hover()  # the delete button shows on hover
    item("guard.closure").locator(".bio-properties-panel-remove-entry").click()
    others.locator(".bio-properties-panel-add-entry").click()
    expected = dict(before, **{"guard.same": "True", "property1": "value"})
    expected["guardMessage.twice"] = expected.pop("guardMessage.same")
    del expected["guard.closure"]
    assert properties(diagram(page, name), task) == expected
    shot(page, "modeler-panel-other-properties")

    page.keyboard.press("Control+z")  # the added one
    page.keyboard.press("Control+z")  # the removed one
    del expected["property1"]
    expected["guard.closure"] = before["guard.closure"]
    assert properties(diagram(page, name), task) == expected


def operator_of(root: Any, element_id: str) -> list[tuple[str, dict[str, str]]]:
    """The service task's ``spiffworkflow:serviceTaskOperator`` and everything in it, in document order."""
    found = root.xpath(f"//bpmn:*[@id='{element_id}']/bpmn:extensionElements/spiff:serviceTaskOperator",
                       namespaces=NS)
    return [(etree.QName(e).localname, dict(e.attrib)) for e in found[0].iter(etree.Element)] if found else []


def test_a_service_tasks_operation_is_edited_removed_and_restored_with_its_parameters_and_retry(
        page: Any, live: Live) -> None:
    demo = open_modeler(page, live, "demo_approval")
    pick(page, "notify")
    assert field(page, "Connector operation").input_value() == "echo"
    type_in(page, "Result variable", "erp_told")
    original = etree.fromstring(live.engine.modeler_view(demo.id)["files"]["bpmn"][DEMO].encode())
    expected = [(tag, dict(attrs, resultVariable="erp_told") if tag == "serviceTaskOperator" else attrs)
                for tag, attrs in operator_of(original, "notify")]
    assert operator_of(diagram(page), "notify") == expected  # echo's parameters (no schema names them) stay

    order = "order_release.bpmn"  # another bundle: the order release, whose connector calls retry
    open_modeler(page, live, "order_release")
    root = diagram(page, order)
    service = root.xpath("//bpmn:serviceTask[bpmn:extensionElements/spiff:serviceTaskOperator"
                         "/spiff:retry]/@id", namespaces=NS)[0]
    before = operator_of(root, service)
    pick(page, service, order)
    field(page, "Connector operation").select_option("")
    assert operator_of(diagram(page, order), service) == []
    field(page, "Connector operation").press("Control+z")
    assert operator_of(diagram(page, order), service) == before  # parameters and retry back, as they were
    expect(field(page, "Connector operation")).not_to_have_value("")
    type_in(page, "Result variable", "now")
    assert [tag for tag, _ in operator_of(diagram(page, order), service)][-1] == "retry"  # the retry stays
