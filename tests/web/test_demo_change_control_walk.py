"""A change control of the demo recipe in Debian's Chromium, with the demo users and the demo data only
(``gmpflow init --demo``, change control required): the data steward drafts a new version of SOP-PARA-500 and
proposes it, assesses its impact, every approver the risk class asks for sees the change side by side
(only the changed field, before and after), its reason, risk and impact before signing, and the new version
is in force once the change control has run — everything on the pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import login, shot
from tests.web.demo_support import (
    DemoSite,
    demo_site,
    open_task,
    sign_back_to_inbox,
    sign_out,
)

__all__ = ["demo_site"]
pytestmark = pytest.mark.xdist_group("browser")

RECIPE = "SOP-PARA-500"
MOISTURE = "/steps/1/parameters/1/target"  # granulate moisture, a critical parameter


def test_a_recipe_change_runs_through_every_approval_in_the_browser_until_it_is_in_force(
        demo_site: DemoSite, page: Any) -> None:
    site = demo_site
    login(page, site, "dana")
    page.get_by_role("link", name="Master data").click()
    page.locator("#types tr[data-type=recipe]").get_by_role("link", name="recipe").click()
    page.locator(f"#records tr[data-key='{RECIPE}']").get_by_role("link", name=RECIPE).click()
    page.get_by_role("link", name="New draft").click()
    target = page.locator(f'#draft-form [name="{MOISTURE}"]')
    assert target.input_value() == "2.0"
    target.fill("2.2")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r".*version=2$"))
    propose = page.locator("#propose-form")
    propose.get_by_label("Why it changes").fill("Moisture end point raised after the dryer qualification.")
    propose.get_by_label("Impact on the product").select_option("direct")
    propose.get_by_role("button", name="Propose change").click()
    assert "Change request #" in page.locator(".flash-success").inner_text()
    site.work()  # the version checked and claimed, the change summarised and classified
    [change], _ = site.engine.list_instances(key="change_control")

    open_task(page, site, "Assess the impact")
    page.get_by_label("Impacted products").fill("PRD-PARA-500")
    page.get_by_label("Open orders affected").fill("MO-DEMO-1001 to 1003 not started")
    page.get_by_label("Training needed").check()
    page.get_by_label("Assessment").fill("Operators briefed on the new end point.")
    page.get_by_role("button", name="Complete").click()  # not signed
    page.wait_for_url(re.compile(r".*/inbox$"))
    site.work()
    sign_out(page)
    assert site.open_elements(change.id) == ["approve_owner", "approve_qa", "approve_supervisor"]

    # each approver (pete: the recipe type's owner role) reads what is decided before signing
    for who, task_name in (("quinn", "QA approval"), ("sam", "Production head approval"),
                           ("pete", "Owner approval")):
        login(page, site, who)
        open_task(page, site, task_name)
        changed = page.locator(f"#change-diff tr[data-path='{MOISTURE}']")
        assert changed.locator("td.before").inner_text().strip() == "2.0"
        assert changed.locator("td.after").inner_text().strip() == "2.2"
        assert page.locator("#change-diff tr.changed").count() == 1
        assert "dryer qualification" in page.locator("#change-reason").inner_text()
        assert "critical" in page.locator("#change-risk").inner_text()
        assert "Operators briefed" in page.locator("#change-impact").inner_text()
        shot(page, f"demo-change-{who}")
        page.get_by_role("radio", name="Approved").check()
        page.get_by_role("button", name="Sign and complete…").click()
        sign_back_to_inbox(page, site, who, "Approved")
        sign_out(page)
    # approved by all: on its effective date (today) the version comes into force; QA verifies it in place
    assert site.engine.masterdata.version("recipe", RECIPE, 2).status == "effective"
    login(page, site, "quinn")
    page.goto(f"{site.url}/masterdata/recipe/{RECIPE}")
    assert "in force" in page.locator("#versions tr.effective[data-number='2']").inner_text().lower()
    open_task(page, site, "Verify the change is in place")
    page.get_by_label("The new version is in force where it is used").check()
    page.get_by_role("button", name="Sign and complete…").click()
    sign_back_to_inbox(page, site, "quinn", "Verified")
    page.goto(f"{site.url}/instances/{change.id}")
    assert page.locator("h1 .badge").inner_text() == "completed"
    shot(page, "demo-change-closed")
    assert site.engine.verify_audit().ok
