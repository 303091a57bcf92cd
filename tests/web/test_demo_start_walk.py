"""A process nobody at the demo has seen, from its file to its last task, in Debian's Chromium with the demo
users (``gmpflow init --demo``, change control required): the test writes a line-clearance model (BPMN and
form-js files, ``tests/bpmn/web_line_clearance``) to a folder, ``gmpflow deploy`` stores it as a draft, the
process owner submits it for change control on the modeler page, the approvers sign on their task pages and it
goes live; then an operator starts it from ``/start`` with its start form and it is completed through its task
forms only — the held-out walk's path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT
from tests.web.conftest import form_ready, login, shot
from tests.web.demo_support import (
    DemoSite,
    choose,
    demo_site,
    open_task,
    sign_back_to_inbox,
    sign_in_dialog,
    sign_out,
)

__all__ = ["demo_site"]
pytestmark = pytest.mark.xdist_group("browser")


def deploy_with_the_cli(site: DemoSite, folder: Path) -> int:
    """``gmpflow deploy FOLDER`` against the demo's database: a draft (change control is required)."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "GMPFLOW_CHANGE_CONTROL": "required",
               "GMPFLOW_DATABASE_URL": str(site.engine.db.url)}
    result = subprocess.run([sys.executable, "-m", "engine.cli", "deploy", str(folder)], env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("line_clearance 1 draft"), result.stdout
    [draft] = [d for d in site.engine.definitions() if d.key == "line_clearance"]
    return int(draft.id)


def test_an_unseen_model_is_deployed_approved_started_from_the_start_page_and_completed_in_the_browser(
        demo_site: DemoSite, page: Any, tmp_path: Path) -> None:
    site = demo_site
    folder = tmp_path / "line_clearance"
    shutil.copytree(FIXTURES / "web_line_clearance", folder)
    draft_id = deploy_with_the_cli(site, folder)

    # the process owner submits the draft for change control from the modeler page
    login(page, site, "pete")
    page.goto(f"{site.url}/modeler/{draft_id}")
    page.wait_for_selector("body[data-modeler-ready=true]")
    form = page.locator("#submit-form")
    form.get_by_label("Why it changes").fill("Line clearance before every product change, recorded.")
    form.get_by_label("Impact on the product").select_option("indirect")
    form.get_by_role("button", name="Submit for change control").click()
    assert "Change request #" in page.locator(".flash-success").inner_text()
    site.work()
    sign_out(page)
    [change], _ = site.engine.list_instances(key="change_control")

    login(page, site, "dana")  # the data steward assesses the impact
    open_task(page, site, "Assess the impact")
    page.get_by_label("Impacted products").fill("every product packed on lines 1 and 2")
    page.get_by_label("Training needed").check()
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(re.compile(r".*/inbox$"))
    site.work()
    sign_out(page)
    # a major change (classify_change.dmn): QA approves, seeing the whole new diagram marked as added
    assert site.open_elements(change.id) == ["approve_qa"]
    login(page, site, "quinn")
    open_task(page, site, "QA approval")
    diagram = page.locator("#diagram-after[data-rendered=true]")
    assert diagram.locator(".djs-element[data-element-id=confirm].gmp-added").count() == 1
    shot(page, "demo-new-process-approval")
    page.get_by_role("radio", name="Approved").check()
    page.get_by_role("button", name="Sign and complete…").click()
    sign_in_dialog(page, "quinn", "Approved")
    page.wait_for_url(re.compile(r".*/inbox$"))
    site.work()  # approved, effective today: the version goes live
    assert site.engine.get_deployment(draft_id).status == "active"
    open_task(page, site, "Verify the change is in place")
    page.get_by_label("The new version is in force where it is used").check()
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "quinn", "Verified")
    sign_out(page)

    # an operator starts it from the start page with its start form, and lands on its first task
    login(page, site, "olivia")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Start").click()
    form_ready(page)
    section = page.locator("#start-line_clearance")
    choose(page, "Packaging line", "Line 2", within=section)
    section.get_by_label("Previous product").fill("PRD-PARA-500")
    section.get_by_label("Business key").fill("LC-2-001")
    shot(page, "demo-new-process-start")
    section.get_by_role("button", name=re.compile("^Start ")).click()
    page.wait_for_url(re.compile(r".*/tasks/\d+$"))
    form_ready(page)
    assert page.get_by_role("heading", level=1).inner_text() == "Inspect the line"
    assert "Line L2, previous product PRD-PARA-500." in page.locator("#form").inner_text()
    page.get_by_label("Leftovers of the previous product found").check()
    page.get_by_label("Areas checked").fill("6")
    page.get_by_role("button", name="Sign and complete…").click()
    sign_in_dialog(page, "olivia", "Performed")
    page.wait_for_url(re.compile(r".*/inbox$"))
    open_task(page, site, "Remove the leftovers")  # leftovers found: the gateway's condition
    page.get_by_label("What was removed").fill("Two tablets under the feeder, one label roll.")
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(re.compile(r".*/inbox$"))
    sign_out(page)

    # the supervisor confirms with his signature (four eyes: not the one who inspected)
    login(page, site, "sam")
    open_task(page, site, "Confirm the line clearance")
    page.get_by_label("The line is clear for the next product").check()
    page.get_by_role("button", name="Sign and complete…").click()
    sign_in_dialog(page, "sam", "Verified")
    page.wait_for_url(re.compile(r".*/inbox$"))
    [instance], _ = site.engine.list_instances(key="line_clearance", business_key="LC-2-001")
    page.goto(f"{site.url}/instances/{instance.id}")
    page.wait_for_selector("#diagram[data-rendered=true]")
    assert page.locator("h1 .badge").inner_text() == "completed"
    shot(page, "demo-new-process-completed")
    assert instance.initiator == "olivia"
    data = site.engine.instance_detail(instance.id)["variables"]
    assert (data["line"], data["leftovers_found"], data["line_clear"]) == ("L2", True, True)
    assert site.engine.verify_audit().ok
