"""The batch release's decision task tells QA what they decide on: the exceptions (as release_exceptions.dmn
decided them, with severity, evidence and the rule), the hash of the record being signed, the record's copies
served to the signed-in session, its deviations and a link to its audit trail (Flask's test client over the
batch-release world of ``tests/batch_support``)."""

from __future__ import annotations

import re

from gmp.processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED
from gmp.processes.sop_execution.test_sop_execution import run_batch
from gmp.services import GmpServices
from tests.batch_support import Plant
from tests.web.test_batch_review import client_for


def test_the_decision_page_shows_exceptions_evidence_hash_copies_and_deviations(plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
    plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
    decide = plant.task("quinn", release, "decide")
    qa = client_for(plant, "quinn")
    page = qa.get(f"/tasks/{decide.id}").get_data(as_text=True)
    context = page[page.index('id="batch-context"'):page.index('id="complete-form"')]
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    assert record["sha256"] in context
    kinds = sorted(re.findall(r'data-kind="(\w+)" data-severity="(\w+)"', context))
    assert kinds == [("correction", "minor"), ("deviation", "major"), ("out_of_limit", "major")]
    assert "typed 5.0 for 0.50" in context and "r_closed_deviation" in context  # evidence and the rule
    assert 'data-deviation="DEV-B-1/00002"' in context and "CAPA-2026-014" in context
    assert 'href="/batches/B-1#audit-trail"' in context
    pdf = qa.get("/batches/B-1/record.pdf")
    assert (pdf.status_code, pdf.mimetype) == (200, "application/pdf")
    assert qa.get("/batches/B-1/record.json").get_json()["sha256"] == record["sha256"]
    assert qa.get("/batches/B-1/record.xml").status_code == 404
    otto = client_for(plant, "otto")  # an operator who took no part in the batch
    assert otto.get("/batches/B-1/record.pdf").status_code == 403
