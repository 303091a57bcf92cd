"""Keyboard and screen-reader basics on the operator's screens (issue 15, point 6): the inbox, the task page,
the start page and the signing dialog — in their plain state and after the server refused something — have
no serious or critical finding in an axe-core scan; the signing dialog takes the focus, keeps a sensible
order and is finished with the keyboard alone; a refused value is shown, named and focused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.a11y import findings
from tests.web.conftest import PASSWORD, Live, form_ready, login, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server


def qa_release_task(live: Live, business_key: str) -> Any:
    """The QA release step of ``web_qa_release`` (signed, meaning Approved), its weighing done."""
    instance_id = live.start("qa_release", business_key)
    weigh = live.task_of(instance_id, "weigh")
    live.engine.complete_task(live.engine.principal("olivia"), weigh.id, {"lot": "L-77", "quantity_kg": 12.5})
    return live.task_of(instance_id, "release")


def focused(page: Any) -> str:
    """What has the keyboard focus: its accessible label's text, else its id."""
    return page.evaluate("""() => { const el = document.activeElement;
        const label = el.labels && el.labels[0] ? el.labels[0].textContent.trim() : '';
        return label.split('\\n')[0].trim() || el.textContent.trim() || el.id; }""")


def test_the_operator_screens_have_no_serious_accessibility_finding(page: Any, live: Live) -> None:
    task = live.task_of(live.start("demo_approval", "A11Y-1"), "request")
    page.goto(f"{live.url}/login")
    assert findings(page) == [], "login"
    login(page, live, "olivia")
    assert findings(page) == [], "inbox"
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    assert findings(page) == [], "task page"
    page.get_by_label("Quantity (units)").fill("5000")  # refused by the server: at most 1000
    page.get_by_role("button", name="Complete").click()
    form_ready(page)
    assert findings(page) == [], "task page with the server's errors"
    page.goto(f"{live.url}/start")
    form_ready(page)
    assert findings(page) == [], "start page"
    section = page.locator("#start-demo_approval")
    section.get_by_role("button", name=re.compile("^Start ")).click()  # no quantity, no description
    form_ready(page)
    assert findings(page) == [], "start page with the server's errors"


def test_the_signing_dialog_has_no_serious_accessibility_finding_open_or_after_a_wrong_password(
        page: Any, live: Live) -> None:
    task = qa_release_task(live, "A11Y-2")
    login(page, live, "quinn")
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    page.get_by_label("Release the batch").check()
    page.get_by_label("QA comment").fill("Within limits.")
    page.get_by_role("button", name="Sign and complete…").click()
    assert findings(page, "#sign-dialog") == [], "signing dialog"
    dialog = page.locator("#sign-dialog")
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill("not-my-password")
    dialog.get_by_role("button", name="Sign").click()
    form_ready(page)
    assert page.locator("#sign-dialog").is_visible()
    assert findings(page, "#sign-dialog") == [], "signing dialog with the refusal"
    shot(page, "a11y-signing-dialog-refused")


def test_a_signature_is_given_with_the_keyboard_alone_in_a_sensible_focus_order(page: Any,
                                                                                 live: Live) -> None:
    task = qa_release_task(live, "A11Y-3")
    login(page, live, "quinn")
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    page.keyboard.press("Space")  # the first field has the focus: the release checkbox
    assert page.get_by_label("Release the batch").is_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("Within limits.")  # the QA comment
    page.get_by_role("button", name="Sign and complete…").focus()
    page.keyboard.press("Enter")
    assert page.locator("#sign-dialog").is_visible()
    assert focused(page) == "Username"  # the dialog takes the focus where the signer starts
    order = [focused(page)]
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == ["Username", "Password", "Cancel", "Sign"]
    page.keyboard.press("Escape")  # closes the dialog; nothing is sent
    assert not page.locator("#sign-dialog").is_visible()
    assert focused(page) == "Sign and complete…"  # back where the signer was
    page.keyboard.press("Enter")
    page.keyboard.type("quinn")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    shot(page, "a11y-keyboard-signing")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/inbox$"))
    assert "signed" in page.locator(".flash-success").inner_text()


def test_a_refused_value_is_shown_named_and_focused(page: Any, live: Live) -> None:
    task = live.task_of(live.start("demo_approval", "A11Y-4"), "request")
    login(page, live, "olivia")
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    page.get_by_label("What is needed").fill("Gloves")
    page.get_by_label("Quantity (units)").fill("5000")
    page.get_by_label("What is needed").focus()
    page.get_by_role("button", name="Complete").click()
    form_ready(page)
    field = page.get_by_label("Quantity (units)")
    assert field.evaluate("el => el === document.activeElement")  # the refused field, not the first one
    assert field.get_attribute("aria-invalid") == "true"
    described = field.get_attribute("aria-describedby").split()
    messages = [page.locator(f"[id='{i}']").inner_text() for i in described
                if page.locator(f"[id='{i}']").count()]
    assert any("at most 1000" in m for m in messages)  # the error is read out with the field
    assert page.locator(f"[id='{described[-1]}']").is_visible()
