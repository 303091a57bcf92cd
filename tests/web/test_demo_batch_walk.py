"""README's demo batch in Debian's Chromium, with the demo users and the demo data only (``gmpflow init
--demo``, the ERP/MES simulator beside the app): the planner's order announcement goes through the REST API
as ``scripts/demo-order`` sends it (the ERP's side); everything the users do happens on the pages — the
supervisor releases the order, operators perform every SOP step on the EBR screen, an out-of-limit moisture is
confirmed with a deviation that the supervisor assesses, a second operator witnesses the critical step, and QA
reviews the batch and releases it, opening the batch record's PDF from the review page."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.test_records import pdf_text, squeeze
from tests.web.conftest import PASSWORD, form_ready, login, shot
from tests.web.demo_support import (
    DemoSite,
    choose,
    demo_site,
    sign_back_to_inbox,
    sign_in_dialog,
    sign_out,
)

__all__ = ["demo_site"]
pytestmark = pytest.mark.xdist_group("browser")

ORDER = "MO-DEMO-1001"
BATCH = f"BATCH-{ORDER}"


def announce_order(site: DemoSite, order: str) -> None:
    """``scripts/demo-order``: the planner paula announces the ERP's order through the REST API."""
    def post(path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(site.url + path, json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    token = post("/api/v1/tokens", {"username": "paula", "password": PASSWORD})["token"]
    post("/api/v1/messages", {"name": "order_ready", "correlation_keys": {"business_key": order},
                              "payload": {"order_id": order}}, token)


def open_from_inbox(page: Any, site: DemoSite, task_name: str, business_key: str) -> None:
    """The inbox row of ``task_name`` for ``business_key``, then its task page."""
    page.goto(f"{site.url}/inbox")
    row = page.locator("tr[data-task-id]", has_text=business_key).filter(
        has=page.get_by_role("link", name=task_name, exact=True))
    row.get_by_role("link", name=task_name, exact=True).click()
    form_ready(page)


def test_the_demo_batch_from_order_release_to_qa_release_in_the_browser(demo_site: DemoSite,
                                                                         page: Any) -> None:
    site = demo_site
    announce_order(site, ORDER)
    site.work()  # the worker: order fetched from the ERP simulator, master data resolved, checks run

    # the supervisor reads the checks and releases the order
    login(page, site, "sam")
    open_from_inbox(page, site, "Release the order", ORDER)
    shot(page, "demo-order-release")
    page.get_by_label("Comment").fill("Master data and equipment checked.")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_in_dialog(page, "sam", "Released")
    page.wait_for_url(re.compile(r".*/inbox$"))
    site.work()  # schedule to the MES simulator, order running, batch started
    sign_out(page)
    batch = site.instance("sop_execution", BATCH)
    assert batch

    # step 1: olivia weighs with the demo lots, picked from the released lots of each material
    login(page, site, "olivia")
    open_from_inbox(page, site, "Perform the step", f"{BATCH}/00001")
    assert page.locator("#ebr-instruction").inner_text().startswith("Weigh paracetamol and lactose")
    page.get_by_label("paracetamol weight").fill("0.5")
    page.get_by_label("Lot of MAT-PARACETAMOL").select_option("PARA-24-001")
    page.get_by_label("Lot of MAT-LACTOSE").select_option("LAC-24-001")
    page.wait_for_selector("#ebr[data-checked=ok]")
    shot(page, "demo-step-1")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "olivia")

    # step 2: the moisture is out of limits: flagged before the signature, confirmed with a deviation
    open_from_inbox(page, site, "Perform the step", f"{BATCH}/00002")
    page.get_by_label("impeller speed").fill("200")
    page.get_by_label("granulate moisture").fill("2.8")
    assert page.locator("#param-1-flag").inner_text() == "out of limits"
    page.get_by_label("Equipment (class GRANULATOR)").select_option("EQ-GRAN-01")
    page.wait_for_selector("#ebr[data-checked=ok]")
    page.get_by_role("button", name="Sign and complete…").click()
    assert "granulate moisture = 2.8 (limits 1.5 – 2.5)" in page.locator("#ebr-out-of-limit").inner_text()
    shot(page, "demo-step-2-out-of-limit")
    page.get_by_role("button", name="Confirm the value and sign…").click()
    sign_back_to_inbox(page, site, "olivia")
    open_from_inbox(page, site, "Confirm or correct the out-of-limit value", f"{BATCH}/00002")
    page.get_by_role("radio", name="right: confirm it and open a deviation").check()
    page.get_by_label("Deviation: what happened").fill("Granulate too wet after the water addition.")
    page.get_by_label("Immediate action taken").fill("Dried 10 minutes longer.")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "olivia")
    sign_out(page)
    step2 = site.instance("sop_step", f"{BATCH}/00002")
    assert site.open_elements(step2) == ["assess_deviation"]

    # the supervisor assesses the deviation; the batch continues
    login(page, site, "sam")
    open_from_inbox(page, site, "Assess the deviation", f"{BATCH}/00002")
    shot(page, "demo-assess-deviation")
    choose(page, "Classification", "minor")
    page.get_by_role("radio", name="continues").check()
    page.get_by_label("Assessment").fill("No impact on quality: moisture dried back into range.")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "sam", "Reviewed")
    sign_out(page)
    assert site.open_elements(step2) == ["verify"]

    # oscar witnesses the critical step 2, then performs step 3 on the demo's tablet press
    login(page, site, "oscar")
    open_from_inbox(page, site, "Verify the critical step", f"{BATCH}/00002")
    page.get_by_label("I checked the recorded values, equipment and materials against what was done").check()
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "oscar", "Verified")
    open_from_inbox(page, site, "Perform the step", f"{BATCH}/00003")
    page.get_by_label("tablet weight").fill("650")
    page.get_by_label("Equipment (class TABLET_PRESS)").select_option("EQ-PRESS-02")
    page.wait_for_selector("#ebr[data-checked=ok]")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "oscar")
    sign_out(page)

    # olivia records the produced quantity: the batch's execution ends
    login(page, site, "olivia")
    open_from_inbox(page, site, "Record the produced quantity", BATCH)
    page.get_by_label("Produced quantity").fill("1000")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "olivia")
    sign_out(page)
    assert site.engine.instance_detail(batch)["instance"].status == "completed"

    # QA (quinn, who took no part) reviews the batch by exception and releases it
    login(page, site, "quinn")
    page.get_by_role("link", name="Batches").click()
    page.locator("#batches").get_by_role("link", name=BATCH).click()
    page.wait_for_url(re.compile(rf".*/batches/{BATCH}$"))
    assert "out_of_limit" in page.locator("#exceptions tr.exception").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")
    shot(page, "demo-batch-review")
    with page.context.expect_page() as opened:  # the copy opens in a tab of its own (rel=noopener)
        page.locator("#record, .facts").get_by_role("link", name="PDF of the batch record").first.click()
    tab = opened.value
    tab.wait_for_url(f"**/batches/{BATCH}/record.pdf", wait_until="commit")
    pdf = tab.request.get(tab.url)  # the bytes the tab shows (Chromium's viewer holds them)
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF-") and BATCH in squeeze(pdf_text(pdf.body()))
    tab.close()
    for step, confirmation in (("Review the batch record (exceptions first)",
                                "I reviewed the exceptions and the batch record"),
                               ("Review the audit trail", "I reviewed the batch's audit trail")):
        page.goto(f"{site.url}/batches/{BATCH}")
        page.locator(".open-release-tasks").get_by_role("link", name=step).click()
        form_ready(page)
        page.get_by_label(confirmation).check()
        page.get_by_role("button", name="Sign and complete…").click()
        sign_in_dialog(page, "quinn", "Reviewed")
        page.wait_for_url(re.compile(rf".*/batches/{BATCH}$"))
        site.work()
    page.goto(f"{site.url}/batches/{BATCH}")
    page.locator(".open-release-tasks").get_by_role("link", name="Close the deviation").click()
    form_ready(page)
    page.get_by_role("radio", name="close it now").check()
    page.get_by_label("Root cause").fill("Water dosing pump drift.")
    page.get_by_label("CAPA reference").fill("CAPA-DEMO-1")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_in_dialog(page, "quinn", "Approved")
    page.wait_for_url(re.compile(rf".*/batches/{BATCH}$"))
    site.work()  # the exceptions checked again by release_exceptions.dmn before the decision

    page.reload()
    page.locator(".open-release-tasks").get_by_role("link", name="Decide the disposition").click()
    form_ready(page)
    assert BATCH in page.locator("#record-pdf").get_attribute("href")  # the decision links the record
    page.get_by_role("radio", name="Released").check()
    page.get_by_label("Reason").fill("Record complete; the deviation is closed with a CAPA.")
    shot(page, "demo-batch-decision")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_in_dialog(page, "quinn", "Released")
    page.wait_for_url(re.compile(rf".*/batches/{BATCH}$"))
    site.work()  # the disposition to the ERP and the MES, the record archived and locked
    page.reload()
    assert "Disposition released" in page.locator("#decision .decision").inner_text()
    shot(page, "demo-batch-released")
    assert site.simulator.counterpart.lots[BATCH]["disposition"] == "released"
    assert site.engine.verify_audit().ok
