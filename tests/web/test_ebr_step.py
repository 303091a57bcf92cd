"""The EBR step screen (issue 15.3) in Debian's Chromium: an operator performs SOP steps from the recipe
step — instruction, each parameter with unit, target and limits beside the input, equipment and lots as pick
lists checked as they are picked — is refused a bad lot before anything is signed, and confirms an
out-of-limit value (flagged before the signing dialog opens, then confirmed with a deviation on the
``confirm_value`` task: the confirm path works)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from gmp.services import GmpServices
from tests.batch_support import PASSWORD, Plant
from tests.web.conftest import Live, form_ready, login, serving, shot


@pytest.fixture
def served(plant: Plant) -> Iterator[Live]:
    plant.receive_released_lot("L-SHORT", "MAT-PARACETAMOL", quantity=0.3)  # released, too little left
    plant.start_batch()
    with serving(plant.engine) as url:
        yield Live(url, plant.engine, plant.clock)


def open_task(page: Any, live: Live, plant: Plant, number: int, element: str) -> None:
    task = plant.task("olivia", plant.step("B-1", number), element)
    page.goto(f"{live.url}/tasks/{task.id}")
    form_ready(page)


def sign(page: Any) -> None:
    dialog = page.locator("#sign-dialog")
    dialog.get_by_label("Username").fill("olivia")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign").click()


def wait_checked(page: Any, verdict: str) -> None:
    page.wait_for_selector(f"#ebr[data-checked={verdict}]")


@pytest.mark.parametrize("reload", [False], ids=["cached"])  # one engine behind the web server
def test_an_operator_performs_steps_on_the_ebr_screen(plant: Plant, served: Live, page: Any) -> None:
    login(page, served, "olivia", PASSWORD)
    open_task(page, served, plant, 1, "perform")
    assert page.locator("#ebr-instruction").inner_text() == "Weigh the paracetamol."
    weight = page.locator("#ebr-parameters tr[data-parameter='weight']")
    assert re.sub(r"\s+", " ", weight.inner_text()).strip().endswith("kg 0.5 0.495 – 0.505 kg")
    lots = page.locator("#lot-0 option").evaluate_all("options => options.map(o => o.value)")
    assert lots == ["", "L-PARA-7", "L-SHORT"]  # released lots of the step's material only

    # a lot with too little left: flagged as it is picked, and refused before the signature
    page.get_by_label("weight").fill("0.5")
    page.get_by_label("Lot of MAT-PARACETAMOL").select_option("L-SHORT")
    wait_checked(page, "refused")
    assert "0.3 kg left" in page.locator("[data-error-for='materials_used.0.quantity']").inner_text()
    page.get_by_role("button", name="Sign and complete…").click()
    sign(page)
    page.wait_for_selector("#form-error")
    assert "Refused before signing (lot_insufficient)" in page.locator("#form-error").inner_text()
    assert page.get_by_label("Lot of MAT-PARACETAMOL").input_value() == "L-SHORT"  # what was entered stays
    shot(page, "ebr-step-refused-lot")
    # nothing consumed, nothing signed
    assert plant.engine.pack(GmpServices).get_lot("L-SHORT")["available"] == 0.3
    assert plant.engine.list_signatures(instance_id=plant.step("B-1", 1)) == []

    # the good lot: signed and consumed
    page.get_by_label("Lot of MAT-PARACETAMOL").select_option("L-PARA-7")
    wait_checked(page, "ok")
    page.get_by_role("button", name="Sign and complete…").click()
    sign(page)
    page.wait_for_url(re.compile(r".*/inbox$"))
    assert plant.engine.pack(GmpServices).get_lot("L-PARA-7")["available"] == 9.5
    plant.run_jobs()

    # step 2: an out-of-limit moisture is flagged before the signing dialog opens, then confirmed
    open_task(page, served, plant, 2, "perform")
    page.get_by_label("impeller speed").fill("200")
    page.get_by_label("moisture").fill("2.8")
    assert page.locator("#param-1-flag").inner_text() == "out of limits"
    page.get_by_label("Equipment (class GRANULATOR)").select_option("EQ-GRAN-01")
    page.get_by_label("Lot of MAT-LACTOSE").select_option("L-LAC-3")
    wait_checked(page, "ok")
    page.get_by_role("button", name="Sign and complete…").click()
    assert page.locator("#ebr-out-of-limit").is_visible()
    assert not page.locator("#sign-dialog").is_visible()  # the choice comes before the signature
    assert "moisture = 2.8 (limits 1.5 – 2.5)" in page.locator("#ebr-out-of-limit").inner_text()
    shot(page, "ebr-step-out-of-limit")
    page.get_by_role("button", name="Confirm the value and sign…").click()
    assert page.locator("#sign-dialog").is_visible()
    sign(page)
    page.wait_for_url(re.compile(r".*/inbox$"))
    plant.run_jobs()

    # the confirm path of the out-of-limit task: no corrected-values row stands in the way
    open_task(page, served, plant, 2, "confirm_value")
    page.get_by_role("radio", name="right: confirm it and open a deviation").check()
    assert page.get_by_text("Corrected values").count() == 0
    page.get_by_label("Deviation: what happened").fill("granulate too wet")
    page.get_by_label("Immediate action taken").fill("dried 10 min longer")
    page.get_by_role("button", name="Sign and complete…").click()
    sign(page)
    page.wait_for_url(re.compile(r".*/inbox$"))
    plant.run_jobs()
    assert plant.open_elements(plant.step("B-1", 2)) == ["assess_deviation"]
    deviation = plant.engine.pack(GmpServices).batch_record("B-1")["steps"][1]["deviation"]  # type: ignore[index]
    assert deviation["description"] == "granulate too wet"
