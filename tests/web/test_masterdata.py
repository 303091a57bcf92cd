"""Browser journey of the data steward: browse master data, edit a draft in the form generated from the type's
JSON Schema (a validation error shown at its field, then fixed), diff two versions, propose the change."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine import bootstrap
from tests.conftest import ADMIN
from tests.web.conftest import Live, login, shot

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one Chromium and one live server
RECIPE = "SOP-PARA-500"


def field(page: Any, pointer: str) -> Any:
    return page.locator(f'#draft-form [name="{pointer}"]')


def test_a_data_steward_browses_edits_a_draft_diffs_and_proposes_a_change(page: Any, live: Live) -> None:
    live.engine.masterdata.load_types(ADMIN)
    bootstrap.load_demo_masterdata(live.engine, ADMIN)
    login(page, live, "dana")
    page.get_by_role("link", name="Master data").click()
    page.wait_for_url(re.compile(r".*/masterdata$"))
    assert page.locator("#types tr[data-type=recipe]").count() == 1
    shot(page, "masterdata-types")
    page.locator("#types tr[data-type=recipe]").get_by_role("link", name="recipe").click()
    page.locator(f"#records tr[data-key='{RECIPE}']").get_by_role("link", name=RECIPE).click()
    page.wait_for_url(re.compile(rf".*/masterdata/recipe/{RECIPE}$"))
    assert "in force" in page.locator("#versions tr.effective[data-number='1']").inner_text().lower()
    assert "impeller speed" in page.locator("#version-data").inner_text()  # nested tables, no raw JSON
    shot(page, "masterdata-record")

    page.get_by_role("link", name="New draft").click()
    impeller = "/steps/1/parameters/0/target"
    assert field(page, impeller).input_value() == "200"
    field(page, impeller).fill("210")
    field(page, "/steps/0/parameters/0/target").fill("")  # required by the schema
    page.get_by_role("button", name="Save draft").click()
    error = page.locator('.field-error[data-pointer="/steps/0/parameters/0/target"]')
    assert "'target' is required" in error.inner_text()
    assert "not saved" in page.locator("#form-errors").inner_text()
    assert field(page, impeller).input_value() == "210"  # what was typed stays
    shot(page, "masterdata-draft-validation-error")
    assert [v.number for v in live.engine.masterdata.record("recipe", RECIPE)[1]] == [1]

    field(page, "/steps/0/parameters/0/target").fill("0.5")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r".*version=2$"))
    assert "Draft v2 saved" in page.locator(".flash-success").inner_text()
    draft = live.engine.masterdata.version("recipe", RECIPE, 2)
    effective = live.engine.masterdata.version("recipe", RECIPE, 1)
    assert draft.status == "draft" and draft.data["steps"][1]["parameters"][0]["target"] == 210
    assert draft.data["steps"][0] == effective.data["steps"][0]  # unchanged fields come back as they were

    form = page.locator("#diff-form")
    form.get_by_label("From").select_option("1")
    form.get_by_label("To").select_option("2")
    form.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r".*/diff\?"))
    row = page.locator('#diff tr[data-path="/steps/1/parameters/0/target"]')
    assert row.locator("th").inner_text() == "steps › 2 › parameters › 1 › target"
    assert (row.locator("td.before").inner_text(), row.locator("td.after").inner_text()) == ("200", "210")
    assert page.locator("#diff tbody tr").count() == 1
    shot(page, "masterdata-diff")

    page.get_by_role("link", name=RECIPE).click()
    propose = page.locator("#propose-form")
    propose.get_by_label("Why it changes").fill("Faster granulation after the PQ runs.")
    propose.get_by_label("Impact on the product").select_option("indirect")
    propose.get_by_role("button", name="Propose change").click()
    assert "Change request #" in page.locator(".flash-success").inner_text()
    assert live.engine.masterdata.version("recipe", RECIPE, 2).status == "in_review"
    assert "in review" in page.locator("#versions tr[data-number='2']").inner_text()
    shot(page, "masterdata-change-proposed")
