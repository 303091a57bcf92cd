"""Browser journeys in Debian's Chromium: each starts from the login page and saves screenshots under
``test-artifacts/web/``. One live server per module; each journey uses its own business key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.store.models import AuditEvent
from tests.web_support import Live, browser, form_ready, live, login, page, shot  # noqa: F401  (fixtures)


def completions(live: Live, task_id: int) -> int:
    return len(live.engine.audit_events(object_type="task", object_id=str(task_id), action="task.completed"))


def test_operator_claims_and_completes_a_task_after_a_server_side_validation_error(page: Any, live: Live) -> None:
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
