"""The batch review page: the exception list first, then the full batch record, the batch's audit trail, its
deviations, and the release decision (the open release step links to its task page and signing dialog).

Over the batch-release world of ``tests/batch_support`` (ERP/MES simulator): QA's whole journey in Debian's
Chromium (screenshots under ``test-artifacts/web/``), and the page's contract with Flask's test client."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gmp.processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED
from gmp.processes.sop_execution.test_sop_execution import run_batch
from tests.batch_support import PASSWORD, Plant
from tests.session_support import browser_session
from tests.web.conftest import Live, form_ready, login, serving, shot
from webapp import create_app


def client_for(plant: Plant, username: str) -> Any:
    app = create_app({"SECRET_KEY": "batch-review", "SESSION_COOKIE_SECURE": False}, engine=plant.engine)
    client = app.test_client()
    browser_session(app, client, plant.engine, username)
    return client


def test_qa_reviews_a_batch_by_exception_and_reaches_the_signed_release_decision(plant: Plant) -> None:
    run_batch(plant)
    qa = client_for(plant, "quinn")
    listing = qa.get("/batches").get_data(as_text=True)
    assert 'href="/batches/B-1"' in listing
    page = qa.get("/batches/B-1").get_data(as_text=True)
    order = [page.index(f'id="{section}"') for section in
             ("exceptions", "record", "audit-trail", "deviations", "decision")]
    assert order == sorted(order)  # the exception list first, the decision last
    exceptions = page[order[0]:order[1]]
    assert sorted(re.findall(r'data-kind="(\w+)"', exceptions)) == ["correction", "deviation", "out_of_limit"]
    assert "granulate too wet" in page[order[3]:order[4]] and "not closed" in page[order[3]:order[4]]
    assert "task.completed" in page[order[2]:order[3]]  # the batch's own audit trail
    release = plant.instance("batch_release", "B-1")
    review_task = plant.task("quinn", release, "review_record")
    assert f'href="/tasks/{review_task.id}?next=/batches/B-1"' in page[order[4]:]  # signed on the task page

    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    plant.complete("quinn", release, "decide",
                   {"disposition": "released", "decision_reason": "record complete, deviation closed"},
                   "Released")
    done = client_for(plant, "quinn").get("/batches/B-1").get_data(as_text=True)
    decision = done[done.index('id="decision"'):]
    assert "<strong>released</strong>" in decision and "Released" in decision and "Quinn Example" in decision
    assert 'data-deviation="DEV-B-1/00002"' in done and "CAPA-2026-014" in done


def test_operators_do_not_see_batch_reviews_and_an_unknown_batch_is_not_found(plant: Plant) -> None:
    assert client_for(plant, "olivia").get("/batches/B-1").status_code == 403
    assert client_for(plant, "quinn").get("/batches/NOPE").status_code == 404


@pytest.fixture
def served(plant: Plant) -> Iterator[Live]:
    with serving(plant.engine) as url:
        yield Live(url, plant.engine, plant.clock)


def sign(page: Any, meaning: str, *facts: str) -> None:
    """Sign and complete the open task: the dialog shows what is signed and asks for the meaning (where the
    step allows several), username and password; signing leads back to the batch review."""
    page.get_by_role("button", name="Sign and complete…").click()
    dialog = page.locator("#sign-dialog")
    summary = dialog.inner_text()
    for fact in ("B-1", *facts):
        assert fact in summary, fact
    meaning_field = dialog.get_by_label("Meaning")
    if meaning_field.evaluate("el => el.tagName") == "SELECT":
        assert meaning_field.input_value() == ""  # nobody chooses the meaning for the signer
        meaning_field.select_option(meaning)
    assert meaning_field.input_value() == meaning
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign").click()
    page.wait_for_url(re.compile(r".*/batches/B-1$"))
    assert "signed" in page.locator(".flash-success").inner_text()


def open_release_step(page: Any, name: str) -> None:
    page.locator(".open-release-tasks").get_by_role("link", name=name).click()
    form_ready(page)


@pytest.mark.parametrize("reload", [False], ids=["cached"])  # one engine behind the web server
def test_qa_reviews_a_batch_by_exception_in_the_browser_and_signs_the_release(plant: Plant, served: Live,
                                                                             page: Any) -> None:
    run_batch(plant)  # a corrected weight, an out-of-limit moisture confirmed as deviation DEV-B-1/00002
    login(page, served, "quinn", PASSWORD)
    page.get_by_role("link", name="Batches").click()
    page.locator("#batches").get_by_role("link", name="B-1").click()
    page.wait_for_url(re.compile(r".*/batches/B-1$"))
    tops = [page.locator(f"#{section}").bounding_box()["y"] for section in
            ("exceptions", "record", "audit-trail", "deviations", "decision")]
    assert tops == sorted(tops)  # the exception list first, the release decision last
    exceptions = page.locator("#exceptions tr.exception")
    assert sorted(exceptions.evaluate_all("rows => rows.map(r => r.dataset.kind)")) == [
        "correction", "deviation", "out_of_limit"]
    assert "granulate too wet" in page.locator("#exceptions").inner_text()
    assert "first entered 5.0" in page.locator("#record tr[data-step='1']").inner_text()
    shot(page, "batch-review-exceptions-first")

    audit = page.locator("#audit-trail tbody tr")
    assert audit.filter(has_text="Quinn Example").count() == 0
    open_release_step(page, "Review the batch record (exceptions first)")
    page.get_by_label("I reviewed the exceptions and the batch record").check()
    page.get_by_label("Review comment").fill("Correction and deviation understood.")
    sign(page, "Reviewed", "Review the batch record", "Correction and deviation understood.")

    audit = page.locator("#audit-trail tbody tr")
    assert audit.filter(has_text="Quinn Example").filter(has_text="task.completed").count() == 1  # the review
    # who entered it
    assert audit.filter(has_text="granulate too wet").filter(has_text="Olivia Example").count() >= 1
    page.locator("#audit-trail").scroll_into_view_if_needed()
    shot(page, "batch-review-audit-trail")
    open_release_step(page, "Review the audit trail")
    page.get_by_label("I reviewed the batch's audit trail").check()
    sign(page, "Reviewed", "Review the audit trail")

    deviation = page.locator("#deviations [data-deviation='DEV-B-1/00002']")
    assert "not closed" in deviation.inner_text()
    open_release_step(page, "Close the deviation")
    # the task's inputs
    assert "Deviation DEV-B-1/00002 (step 2, minor)" in page.locator("#form").inner_text()
    assert page.get_by_role("textbox", name="Deviation").input_value() == "DEV-B-1/00002"
    inputs = json.loads(page.locator("#task-config").text_content())["data"]
    assert "batch_participants" not in inputs and "summary" not in inputs  # only what the form names
    page.get_by_role("radio", name="close it now").check()
    page.get_by_label("Root cause").fill("water dosing pump drift")
    page.get_by_label("CAPA reference").fill("CAPA-2026-014")
    sign(page, "Approved", "Close the deviation", "DEV-B-1/00002", "CAPA-2026-014")
    deviation = page.locator("#deviations [data-deviation='DEV-B-1/00002']")
    assert "closed" in deviation.locator(".badge").inner_text() and "CAPA-2026-014" in deviation.inner_text()

    plant.run_jobs()  # the worker: the exceptions re-checked by release_exceptions.dmn before the decision
    page.reload()
    open_release_step(page, "Decide the disposition")
    page.get_by_role("radio", name="Released").check()
    page.get_by_label("Reason").fill("Record complete, deviation closed with CAPA.")
    shot(page, "batch-review-decision-form")
    sign(page, "Released", "Decide the disposition", "Record complete, deviation closed with CAPA.")
    plant.run_jobs()  # the worker: disposition to ERP and MES, record archived
    page.reload()
    decision = page.locator("#decision")
    assert "Disposition released" in decision.locator(".decision").inner_text()
    manifestation = decision.locator("p.decision + .manifestation")  # the decision's own signature
    assert manifestation.locator(".sig-meaning").text_content() == "Released"  # shown in capitals
    assert manifestation.locator(".sig-name").inner_text() == "Quinn Example"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", manifestation.locator("time").inner_text())
    decision.scroll_into_view_if_needed()
    shot(page, "batch-review-released")
    release = plant.instance("batch_release", "B-1")
    assert plant.status(release) == "completed"
    assert plant.simulator.counterpart.lots["B-1"]["disposition"] == "released"
    signed = plant.engine.list_signatures(instance_id=release)
    assert [(s["meaning"], s["printed_name"]) for s in signed] == [
        ("Reviewed", "Quinn Example"), ("Reviewed", "Quinn Example"), ("Approved", "Quinn Example"),
        ("Released", "Quinn Example")]
