"""The start page in Debian's Chromium (issue 15, point 1): an operator starts a process from ``/start``
and lands on its first task."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Live, form_ready, login, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server


def test_an_operator_starts_demo_approval_from_the_start_page_and_lands_on_its_task(page: Any,
                                                                                   live: Live) -> None:
    login(page, live, "olivia")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Start").click()
    page.wait_for_url(re.compile(r".*/start$"))
    form_ready(page)
    # a start form is drawn by form-js; change control is not the operator's to start
    assert page.locator("#start-sop_correction .form-host").get_by_label("Batch").count() == 1
    assert page.locator("#start-change_control").count() == 0
    assert "integration, planner" in page.locator("#started-by-others").inner_text()
    shot(page, "operator-start-page")
    section = page.locator("#start-demo_approval")
    section.get_by_label("Business key").fill("REQ-START-1")
    section.get_by_role("button", name=re.compile("^Start ")).click()
    page.wait_for_url(re.compile(r".*/tasks/\d+$"))
    form_ready(page)
    assert page.get_by_role("heading", level=1).inner_text() == "Describe the request"
    assert "REQ-START-1" in page.locator(".facts").inner_text()
    shot(page, "operator-started-task")
    [instance] = live.engine.list_instances(business_key="REQ-START-1")[0]
    assert (instance.process_key, instance.initiator) == ("demo_approval", "olivia")


def test_a_refused_start_form_shows_the_servers_error_at_the_field(page: Any, live: Live) -> None:
    login(page, live, "pete")
    page.goto(f"{live.url}/start")
    form_ready(page)
    section = page.locator("#start-change_control")
    section.get_by_label("Business key").fill("CC-WEB-1")
    section.get_by_role("button", name=re.compile("^Start ")).click()  # no kind of change chosen
    form_ready(page)
    section = page.locator("#start-change_control")
    assert section.locator(".fjs-form-field-error").count() >= 1
    assert section.get_by_label("Business key").input_value() == "CC-WEB-1"
    shot(page, "process-owner-start-form-error")
    assert live.engine.list_instances(business_key="CC-WEB-1")[1] == 0
