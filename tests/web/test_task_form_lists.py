"""A form-js list of rows on a task page (Debian's Chromium): form-js draws an optional list with one blank
row; a row left wholly blank was never entered and is not sent, while a row partly filled is sent and
refused at its field like any entry (the yield form's material reconciliation once refused every
produced quantity)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import ADMIN, FIXTURES
from tests.web.conftest import Live, form_ready, login

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server
# a required field's label ends in an asterisk
PALLETS, PALLET = re.compile(r"^Pallets\*?$"), re.compile(r"^Pallet\*?$")


def count_task(live: Live, business_key: str) -> Any:
    live.engine.deploy(ADMIN, [FIXTURES / "web_optional_list"])  # unchanged after the first: the same version
    return live.task_of(live.start("optional_list", business_key), "count", "olivia")


def test_a_list_row_left_blank_is_not_sent_and_the_task_completes(page: Any, live: Live) -> None:
    task = count_task(live, "PAL-1")
    login(page, live, "olivia")
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    assert page.get_by_label(PALLET).input_value() == ""  # the blank row form-js draws
    page.get_by_label(PALLETS).fill("12")
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(re.compile(r".*/inbox$"))
    [done] = [t for t in live.engine.instance_detail(task.instance_id)["tasks"] if t.id == task.id]
    assert done.data == {"pallets": 12, "damaged": []}


def test_a_list_row_partly_filled_is_sent_and_refused_at_its_field(page: Any, live: Live) -> None:
    task = count_task(live, "PAL-2")
    login(page, live, "olivia")
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)
    page.get_by_label(PALLETS).fill("12")
    page.get_by_label(PALLET).fill("P-7")  # no damage given
    page.get_by_role("button", name="Complete").click()
    form_ready(page)
    assert "Damage is required" in page.locator("#server-errors").inner_text()
    assert live.engine.instance_detail(task.instance_id)["tasks"][0].state != "completed"
