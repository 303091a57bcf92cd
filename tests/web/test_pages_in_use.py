"""What makes the pages usable day to day (issue 15, point 5): the record's PDF, JSON and HTML copies open
from the instance, batch and task pages in the signed-in session under the API's read rule; times are shown
in the reader's time zone with the UTC instant on hover (records stay UTC); the inbox and the instance page
refresh when something changes; deactivating, removing a role and terminating ask first and keep the reason;
a form that takes more than a second shows that it is working."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from gmp.processes.sop_execution.test_sop_execution import run_batch
from tests.batch_support import PASSWORD as PLANT_PASSWORD
from tests.batch_support import Plant
from tests.conftest import ADMIN
from tests.web.conftest import Live, form_ready, login, serving, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server


def copy_link(page: Any, what: str, fmt: str) -> str:
    return page.get_by_role("link", name=f"{fmt} of {what}").first.get_attribute("href")


# -- record copies in the session ----------------------------------------------------------------------------
def test_an_operator_opens_her_instance_record_from_the_task_page_and_a_stranger_is_refused(
        page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "COPY-1")
    task = live.task_of(instance_id, "request")
    login(page, live, "olivia")  # she started it: a participant, not a reader of every record
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    pdf = page.request.get(live.url + copy_link(page, "the instance record", "PDF"))
    assert (pdf.status, pdf.headers["content-type"]) == (200, "application/pdf")
    assert pdf.body().startswith(b"%PDF") and "inline" in pdf.headers["content-disposition"]
    data = page.request.get(live.url + copy_link(page, "the instance record", "JSON")).json()
    assert data["instance"]["business_key"] == "COPY-1"
    assert "COPY-1" in page.request.get(live.url + copy_link(page, "the instance record", "HTML")).text()
    # the API keeps to bearer tokens: the browser session does not open it
    assert page.request.get(f"{live.url}/api/v1/instances/{instance_id}/record.pdf").status == 401

    page.goto(f"{live.url}/login")
    login(page, live, "paula")  # a planner who took no part: the engine's read rule refuses her
    refused = page.request.get(f"{live.url}/instances/{instance_id}/record.pdf")
    assert refused.status == 403 and "may read" in refused.text()


@pytest.fixture
def served(plant: Plant) -> Iterator[Live]:
    with serving(plant.engine) as url:
        yield Live(url, plant.engine, plant.clock)


@pytest.mark.parametrize("reload", [False], ids=["cached"])  # one engine behind the web server
def test_qa_opens_the_batch_record_pdf_from_the_batch_review_and_from_the_release_task(
        plant: Plant, served: Live, page: Any) -> None:
    run_batch(plant)
    login(page, served, "quinn", PLANT_PASSWORD)
    page.goto(f"{served.url}/batches/B-1")
    pdf = page.request.get(served.url + copy_link(page, "the batch record", "PDF"))
    assert (pdf.status, pdf.headers["content-type"]) == (200, "application/pdf")
    assert pdf.body().startswith(b"%PDF") and "B-1-batch-record.pdf" in pdf.headers["content-disposition"]
    shot(page, "batch-review-record-copies")
    page.locator(".open-release-tasks").get_by_role("link").first.click()
    form_ready(page)
    assert copy_link(page, "the batch record", "PDF") == "/batches/B-1/record.pdf"
    record = page.request.get(served.url + copy_link(page, "the batch record", "JSON")).json()
    assert record["batch_id"] == "B-1" and record["sha256"] in page.locator("#record-sha256").inner_text()



# -- times ---------------------------------------------------------------------------------------------------
def test_times_show_in_the_readers_zone_with_the_utc_instant_on_hover_and_records_stay_utc(
        browser: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "TIME-1")
    context = browser.new_context(timezone_id="Asia/Tokyo")
    try:
        tab = context.new_page()
        login(tab, live, "ada")
        tab.goto(f"{live.url}/instances/{instance_id}")
        started = tab.locator("#instance-head time").first
        started_at = live.engine.instance_detail(instance_id)["instance"].started_at
        utc = started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        tab.wait_for_function("() => document.querySelector('#instance-head time').title !== ''")
        assert started.get_attribute("title") == utc  # the UTC instant on hover
        assert started.inner_text() != utc and started.inner_text().endswith("GMT+9")  # the reader's zone
        hours = int(utc[11:13])
        assert started.inner_text()[11:13] == f"{(hours + 9) % 24:02d}"
        record = tab.request.get(f"{live.url}/instances/{instance_id}/record.json").json()
        assert record["instance"]["started_at"].endswith(("+00:00", "Z"))  # records stay UTC
    finally:
        context.close()


# -- live pages ----------------------------------------------------------------------------------------------
def test_the_inbox_shows_a_new_task_without_a_reload(page: Any, live: Live) -> None:
    login(page, live, "oscar")
    page.wait_for_function("() => document.getElementById('live-status') !== null")
    marker = page.evaluate("() => window.location.href")
    task = live.task_of(live.start("demo_approval", "LIVE-1", who="olivia"), "request")
    page.locator(f"tr[data-task-id='{task.id}']").wait_for()  # polled in, not reloaded
    assert page.evaluate("() => window.location.href") == marker
    assert int(page.evaluate("() => document.body.dataset.refreshed")) >= 1
    assert "LIVE-1" in page.locator(f"tr[data-task-id='{task.id}']").inner_text()


def test_the_inbox_shows_a_task_that_arrived_between_its_render_and_its_first_poll(
        page: Any, live: Live) -> None:
    arrived = []

    def first_poll_delayed(route: Any) -> None:
        if not arrived:  # the task arrives while the page's first poll is on its way
            arrived.append(live.task_of(live.start("demo_approval", "LIVE-0", who="olivia"), "request"))
        route.continue_()

    page.route("**/changes", first_poll_delayed)
    login(page, live, "oscar")
    page.locator("tr[data-task-id]", has_text="LIVE-0").wait_for()  # not missed: the page knew what it showed
    assert page.locator(f"tr[data-task-id='{arrived[0].id}']").count() == 1


def test_the_instance_page_shows_a_completed_task_without_a_reload(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "LIVE-2")
    task = live.task_of(instance_id, "request")
    login(page, live, "ada")
    page.goto(f"{live.url}/instances/{instance_id}")
    page.wait_for_function("() => document.getElementById('live-status') !== null")
    live.engine.complete_task(live.engine.principal("olivia"), task.id, {"quantity": 3, "comment": "three"})
    page.locator("#instance-work").get_by_text("olivia").first.wait_for()
    assert "completed" in page.locator("#instance-work").inner_text()


def test_an_inbox_left_open_still_signs_out_after_the_idle_time_and_says_why(page: Any, live: Live) -> None:
    login(page, live, "oscar")
    page.wait_for_function("() => document.getElementById('live-status') !== null")
    live.clock.advance(minutes=10)  # oscar walks away; the page keeps polling
    with page.expect_response(lambda response: response.url.endswith("/changes")):
        pass  # a poll while he is away: not his activity
    live.clock.advance(minutes=5, seconds=1)  # 15 minutes since he last did something
    page.wait_for_url(re.compile(r".*/login\?next=/inbox$"))  # the page reloaded itself into the sign-in
    expect(page.locator(".flash-info")).to_contain_text("without activity")


# -- confirmations -------------------------------------------------------------------------------------------
def test_terminating_asks_first_keeps_the_reason_and_a_cancel_changes_nothing(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "TERM-1")
    login(page, live, "ada")
    page.goto(f"{live.url}/instances/{instance_id}")
    page.get_by_label("Reason (required)").fill("Ordered twice by mistake")
    page.get_by_role("button", name="Terminate").click()
    dialog = page.locator("#confirm-dialog")
    assert f"Terminate instance #{instance_id}?" in dialog.inner_text()
    assert dialog.get_by_label("Reason (required)").input_value() == "Ordered twice by mistake"
    shot(page, "terminate-confirmation")
    before = live.engine.instance_detail(instance_id)["instance"].status
    dialog.get_by_role("button", name="Cancel").click()
    assert not dialog.is_visible()
    assert live.engine.instance_detail(instance_id)["instance"].status == before != "terminated"
    page.get_by_role("button", name="Terminate").click()
    dialog.get_by_role("button", name="Terminate").click()
    assert "terminated" in page.locator(".flash-success").inner_text()
    [event] = live.engine.audit_events(object_type="instance", object_id=str(instance_id),
                                       action="instance.terminated")
    assert event.reason == "Ordered twice by mistake"


def test_removing_a_role_and_deactivating_ask_for_a_reason_and_keep_it(page: Any, live: Live) -> None:
    live.engine.add_user(ADMIN, "walt", "Walt Weigher", "first-pass-1", ["operator", "supervisor"])
    login(page, live, "ada")
    page.goto(f"{live.url}/admin/users")
    page.get_by_role("button", name="Remove role supervisor from walt").click()
    dialog = page.locator("#confirm-dialog")
    assert "Remove the role supervisor from walt?" in dialog.inner_text()
    dialog.get_by_role("button", name="Remove role").click()  # no reason given
    error = dialog.locator("#confirm-error")
    assert error.is_visible() and "reason" in error.inner_text()
    assert dialog.get_by_label("Reason (required)").get_attribute("aria-invalid") == "true"
    assert "supervisor" in live.engine.principal("walt").roles  # nothing sent
    dialog.get_by_label("Reason (required)").fill("Left the night shift")
    dialog.get_by_role("button", name="Remove role").click()
    assert "Role supervisor removed from walt" in page.locator(".flash-success").inner_text()
    assert live.engine.principal("walt").roles == frozenset({"operator"})

    row = page.locator("tr[data-username=walt]")
    row.get_by_text("Change…").click()
    form = row.locator("form", has=page.get_by_role("button", name="Deactivate"))
    form.get_by_label("Reason").fill("Left the company")
    form.get_by_role("button", name="Deactivate").click()
    assert "Deactivate walt?" in dialog.inner_text()
    dialog.get_by_role("button", name="Deactivate").click()
    assert "deactivated" in page.locator(".flash-success").inner_text()
    reasons = {e.action: e.reason for e in live.engine.audit_events(object_id="walt")}
    assert "Left the night shift" in reasons.values() and "Left the company" in reasons.values()


# -- progress ------------------------------------------------------------------------------------------------
def test_a_form_that_takes_more_than_a_second_shows_that_it_is_working(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "SLOW-1")
    login(page, live, "ada")
    page.goto(f"{live.url}/instances/{instance_id}")
    # the answer never replaces the page (204 No Content), as while a slow server is still at work
    page.route(re.compile(r".*/admin/instances/\d+/suspend$"), lambda route: route.fulfill(status=204))
    page.get_by_label("Reason (required)").fill("Waiting for the supplier")
    page.get_by_role("button", name="Suspend").click()
    assert page.evaluate("() => document.body.dataset.busy") == "true"
    shown = page.wait_for_function("""() => { const el = document.getElementById('progress');
        if (!el || getComputedStyle(el).display === 'none' || getComputedStyle(el).visibility !== 'visible')
          return null;
        return [el.getAttribute('role'), el.textContent.trim()]; }""").json_value()
    assert shown == ["status", "Working…"]  # after the second's delay (CSS), announced as a status
    assert page.get_by_role("button", name="Suspend").get_attribute("class") == "busy"
    shot(page, "form-in-progress")
    page.unroute(re.compile(r".*/admin/instances/\d+/suspend$"))
    assert live.engine.instance_detail(instance_id)["instance"].status != "suspended"  # nothing reached it
