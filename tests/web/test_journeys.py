"""Browser journeys in Debian's Chromium: each starts from the login page and saves screenshots under
``test-artifacts/web/``. One live server per module; each journey uses its own business key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Live, form_ready, login, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server


def completions(live: Live, task_id: int) -> int:
    return len(live.engine.audit_events(object_type="task", object_id=str(task_id), action="task.completed"))


def test_operator_claims_and_completes_a_task_after_a_server_side_validation_error(page: Any,
                                                                                   live: Live) -> None:
    instance_id = live.start("demo_approval", "ORD-1001")
    task = live.task_of(instance_id, "request")
    login(page, live, "olivia")
    row = page.locator(f"tr[data-task-id='{task.id}']")
    assert "ORD-1001" in row.inner_text() and "Demo approval" in row.inner_text()
    row.get_by_role("button", name="Claim").click()
    page.wait_for_url(re.compile(r".*/inbox"))
    row = page.locator(f"tr[data-task-id='{task.id}']")
    assert "claimed" in row.inner_text()
    shot(page, "operator-inbox-claimed")
    row.get_by_role("link", name="Describe the request").click()
    form_ready(page)
    assert page.locator(".instructions strong").inner_text() == "what"
    assert "Limits: 1 – 1000" in page.locator("#form").inner_text()
    page.get_by_label("Quantity (units)").fill("5000")
    page.get_by_label("What is needed").fill("Ten boxes of gloves")
    page.get_by_role("button", name="Complete").click()
    form_ready(page)
    error = page.locator(".fjs-form-field-error").first
    assert "at most 1000" in error.inner_text()
    shot(page, "operator-task-validation-error")
    page.get_by_label("Quantity (units)").fill("10")
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(re.compile(r".*/inbox$"))
    assert "completed" in page.locator(".flash-success").inner_text()
    assert completions(live, task.id) == 1
    assert live.engine.instance_detail(instance_id)["tasks"][0].data == {"quantity": 10,
                                                                        "comment": "Ten boxes of gloves"}


def test_an_operator_completes_a_task_with_the_keyboard_alone(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "ORD-1002")
    task = live.task_of(instance_id, "request")
    page.goto(f"{live.url}/login")
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type("oscar")  # the username field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type("demo-pass-1")
    page.keyboard.press("Enter")
    shot(page, "keyboard-login")
    page.wait_for_url(re.compile(r".*/inbox$"))
    tab_to(page, lambda el: el["href"].endswith(f"/tasks/{task.id}"))
    page.keyboard.press("Enter")
    form_ready(page)
    page.keyboard.type("12")  # the first field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type("Twelve crates")
    shot(page, "keyboard-task-filled")
    tab_to(page, lambda el: el["id"] == "complete-button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/inbox$"))
    assert completions(live, task.id) == 1


def tab_to(page: Any, wanted: Any, limit: int = 60) -> None:
    """Press Tab until the focused element satisfies ``wanted`` (given its id and href)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => ({id: document.activeElement.id || '', "
                                "href: document.activeElement.getAttribute('href') || ''})")
        if wanted(focused):
            return
    raise AssertionError("the element was not reachable with Tab")


@pytest.mark.parametrize("page", [{"width": 1024, "height": 768}], indirect=True)
def test_pages_fit_a_1024_by_768_tablet_without_horizontal_scrolling(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "ORD-1003-WITH-A-RATHER-LONG-BUSINESS-KEY")
    task = live.task_of(instance_id, "request")

    def fits(name: str) -> None:
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        shot(page, f"tablet-{name}")
        assert widths[0] <= widths[1], (name, widths)

    login(page, live, "olivia")
    fits("inbox")
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    fits("task")
    page.get_by_role("button", name="Sign out").click()
    login(page, live, "ada")
    for name, path in [("instances", "/admin/instances"), ("instance", f"/instances/{instance_id}"),
                       ("incidents", "/admin/incidents"), ("audit", "/admin/audit"),
                       ("users", "/admin/users")]:
        page.goto(live.url + path)
        if name == "instance":
            page.wait_for_selector("#diagram[data-rendered=true]")
        fits(name)


def test_a_double_submit_completes_the_task_once(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "ORD-1004")
    task = live.task_of(instance_id, "request")
    login(page, live, "olivia")
    second = page.context.new_page()  # the same task open in a second tab
    for tab in (page, second):
        tab.goto(f"{live.url}/tasks/{task.id}")
        form_ready(tab)
        tab.get_by_label("Quantity (units)").fill("3")
        tab.get_by_label("What is needed").fill("Three pallets")
    page.get_by_role("button", name="Complete").dblclick()  # a double click sends one request
    page.wait_for_url(re.compile(r".*/inbox$"))
    shot(page, "double-submit-first-tab")
    second.get_by_role("button", name="Complete").click()
    second.wait_for_selector("h1:has-text('Already completed')")
    assert "changed nothing" in second.inner_text("main")
    shot(second, "double-submit-already-completed")
    assert completions(live, task.id) == 1


def test_qa_signs_after_a_wrong_password_and_the_manifestation_shows(page: Any, live: Live) -> None:
    instance_id = live.start("qa_release", "BATCH-2001")
    weigh = live.task_of(instance_id, "weigh")
    live.engine.complete_task(live.engine.principal("olivia"), weigh.id, {"lot": "L-77", "quantity_kg": 12.5})
    task = live.task_of(instance_id, "release")
    login(page, live, "quinn")
    page.locator(f"tr[data-task-id='{task.id}']").get_by_role("link").click()
    form_ready(page)
    page.get_by_label("Release the batch").check()
    page.get_by_label("QA comment").fill("Within limits; released.")
    page.get_by_role("button", name="Sign and complete…").click()
    dialog = page.locator("#sign-dialog")
    assert dialog.is_visible()
    summary = dialog.inner_text()
    for fact in ("Release the batch", "QA release", "BATCH-2001", "QA comment", "Within limits; released.",
                 "yes"):
        assert fact in summary, fact
    assert dialog.get_by_label("Meaning").input_value() == "Approved"
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill("not-my-password")
    shot(page, "qa-signing-dialog")
    dialog.get_by_role("button", name="Sign").click()
    form_ready(page)
    dialog = page.locator("#sign-dialog")
    assert dialog.is_visible()  # opened again, with the words and the same data
    assert "password is wrong" in dialog.locator("#sign-error").inner_text()
    assert "Within limits; released." in dialog.inner_text()
    shot(page, "qa-signing-wrong-password")
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill("demo-pass-1")
    dialog.get_by_role("button", name="Sign").click()
    page.wait_for_url(re.compile(r".*/inbox$"))
    assert "signed" in page.locator(".flash-success").inner_text()
    page.goto(f"{live.url}/instances/{instance_id}")
    manifestation = page.locator("#signatures .manifestation")
    text = manifestation.inner_text()
    assert "Approved" in text.title() and "Quinn QA" in text and "UTC" in text
    page.wait_for_selector("#diagram[data-rendered=true]")
    shot(page, "qa-instance-manifestation")


def test_an_admin_suspends_and_resumes_an_instance_with_a_reason(page: Any, live: Live) -> None:
    instance_id = live.start("demo_approval", "ORD-1005")
    login(page, live, "ada")
    page.goto(f"{live.url}/admin/instances")
    page.get_by_label("Business key").fill("ORD-1005")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*business_key=ORD-1005"))  # count the rows of the filtered page
    rows = page.locator("#instances tbody tr")
    assert rows.count() == 1
    rows.get_by_role("link", name=str(instance_id)).click()
    page.wait_for_selector("#diagram[data-rendered=true]")
    assert (page.locator("#diagram .gmp-active").count() == 1
            and page.locator("#diagram .gmp-completed").count() >= 1)
    shot(page, "admin-instance-diagram")
    page.get_by_label("Reason (required)").fill("Scale S-01 out of calibration")
    page.get_by_role("button", name="Suspend").click()
    # expect() waits for the page the form posts to; reading at once could read the page still shown
    expect(page.locator(".flash-success")).to_contain_text("suspended")
    expect(page.locator(".facts")).to_contain_text("Scale S-01 out of calibration")
    page.get_by_label("Reason (required)").fill("Scale recalibrated")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".flash-success")).to_contain_text("resumed")
    expect(page.locator("h1 .badge")).to_have_text("waiting")
    audit = page.locator("#audit-h + table").inner_text()
    assert "Scale S-01 out of calibration" in audit and "Scale recalibrated" in audit
    shot(page, "admin-instance-resumed")


def test_an_admin_retries_an_incident_with_a_reason(page: Any, live: Live) -> None:
    instance_id = live.start("service_retry_incident", "ERP-3001", who="ada", fail_times=3)
    for _ in range(10):
        live.engine.run_jobs_once()
        live.clock.advance(minutes=5)
    incident = next(i for i in live.engine.list_incidents() if i.instance_id == instance_id)
    login(page, live, "ada")
    page.goto(f"{live.url}/admin/incidents")
    row = page.locator("#incidents tbody tr", has_text=f"#{instance_id}")
    assert "ERP unreachable" in row.inner_text()
    shot(page, "admin-incidents")
    row.get_by_label("Reason").fill("ERP is back after maintenance")
    row.get_by_role("button", name="Retry").click()
    assert f"Incident {incident.id} retried" in page.locator(".flash-success").inner_text()
    for _ in range(3):
        live.engine.run_jobs_once()
        live.clock.advance(minutes=5)
    page.goto(f"{live.url}/instances/{instance_id}")
    assert page.locator("h1 .badge").inner_text() == "completed"
    assert "ERP is back after maintenance" in page.locator("#audit-h + table").inner_text()


def test_an_admin_verifies_and_exports_the_audit_trail(page: Any, live: Live) -> None:
    login(page, live, "ada")
    page.goto(f"{live.url}/admin/audit")
    page.get_by_role("link", name="Verify the chain and signatures").click()
    result = page.locator("#verify-result")
    assert result.inner_text().startswith("Verified")
    shot(page, "admin-audit-verified")
    page.get_by_label("Action").fill("user.created")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*action=user\.created"))  # count the rows of the search result
    assert page.locator("table.audit tbody tr").count() >= 9  # the demo users
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith("seq,at,actor_id") and "user.created" in text and "task.completed" not in text


def test_an_admin_creates_a_user_and_grants_a_role(page: Any, live: Live) -> None:
    login(page, live, "ada")
    page.goto(f"{live.url}/admin/users")
    form = page.locator("#new-user")
    form.get_by_label("Username").fill("wanda")
    form.get_by_label("Printed name").fill("Wanda Weigher")
    form.get_by_label("Initial password").fill("first-pass-1")
    form.get_by_label("operator").check()
    form.get_by_role("button", name="Create user").click()
    assert "User wanda created" in page.locator(".flash-success").inner_text()
    row = page.locator("tr[data-username=wanda]")
    row.get_by_text("Change…").click()
    grant = row.locator("form", has=page.get_by_role("button", name="Grant role"))
    grant.get_by_label("Role").select_option("supervisor")
    grant.get_by_label("Reason").fill("Covers the night shift")
    grant.get_by_role("button", name="Grant role").click()
    assert "Role supervisor granted to wanda" in page.locator(".flash-success").inner_text()
    page.wait_for_load_state()  # the whole user table, not the rows parsed so far
    assert page.locator("tr[data-username=wanda] .roles .chip span").all_inner_texts() == ["operator",
                                                                                           "supervisor"]
    shot(page, "admin-users")
    events = live.engine.audit_events(object_id="wanda")
    assert [e.action for e in events][:1] == ["user.created"] and any(e.reason == "Covers the night shift"
                                                                      for e in events)
