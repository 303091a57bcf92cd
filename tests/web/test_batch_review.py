"""The batch review page: the exception list first, then the full batch record, the batch's audit trail, its
deviations, and the release decision (the open release step links to its task page and signing dialog).

Driven with Flask's test client over the batch-release world of ``tests/batch_support`` (ERP/MES simulator)."""

# ruff: noqa: F811  (fixtures imported by name)
from __future__ import annotations

import re
from typing import Any

from processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED
from processes.sop_execution.test_sop_execution import run_batch
from tests.batch_support import Plant, plant, simulator  # noqa: F401
from tests.conftest import clock, database, postgres_database, sqlite_template  # noqa: F401
from tests.scenario_support import reload  # noqa: F401
from webapp import create_app


def client_for(plant: Plant, username: str) -> Any:
    app = create_app({"SECRET_KEY": "batch-review", "SESSION_COOKIE_SECURE": False}, engine=plant.engine)
    client = app.test_client()
    with client.session_transaction() as session:
        session["user"], session["seen"] = username, plant.clock.now().timestamp()
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
    assert f'href="/tasks/{review_task.id}"' in page[order[4]:]  # the decision is signed on the task page

    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    plant.complete("quinn", release, "decide",
                   {"disposition": "released", "decision_reason": "record complete, deviation closed"}, "Released")
    done = client_for(plant, "quinn").get("/batches/B-1").get_data(as_text=True)
    decision = done[done.index('id="decision"'):]
    assert "<strong>released</strong>" in decision and "Released" in decision and "Quinn Example" in decision
    assert 'data-deviation="DEV-B-1/00002"' in done and "CAPA-2026-014" in done


def test_operators_do_not_see_batch_reviews_and_an_unknown_batch_is_not_found(plant: Plant) -> None:
    assert client_for(plant, "olivia").get("/batches/B-1").status_code == 403
    assert client_for(plant, "quinn").get("/batches/NOPE").status_code == 404
