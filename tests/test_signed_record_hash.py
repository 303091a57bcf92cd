"""The signature covers what was read (issue 14, point 6): the batch record carries its SHA-256, stable while
nothing in it changes; the review and release tasks show it; a QA signature on a batch keeps the hash (and the
facts) of the record it was given; signing a record that changed since answers 409 ``record_changed``,
storing and counting nothing; ``audit verify`` rechecks every kept record against its signed hash.

Over the batch-release world of ``tests/batch_support`` (real accounts, real ERP/MES simulator)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, text

from engine.audit import canonical_json, normalized, sha256_hex
from engine.identity import get_user
from engine.store.models import AuditEvent, Signature
from gmp.processes.batch_release.test_batch_release import REVIEWED
from gmp.processes.sop_execution.test_sop_execution import run_batch
from gmp.services import GmpServices
from tests.batch_support import PASSWORD, Plant
from tests.hostile_support import snapshot
from tests.session_support import ApiCaller, browser_session
from webapp import create_app

pytestmark = pytest.mark.parametrize("reload", [False])  # the hash is about the record, not the engine cache


def api_for(plant: Plant) -> ApiCaller:
    return ApiCaller(plant.engine, "record-hash", PASSWORD)


def review_signature(who: str, sha: str | None, password: str = PASSWORD) -> dict[str, Any]:
    signature = {"username": who, "password": password, "meaning": "Reviewed"}
    return signature if sha is None else {**signature, "record_sha256": sha}


def correct_step_1(plant: Plant) -> None:
    """An approved correction: the record changes (a value, a correction entry)."""
    correction = plant.engine.start_instance(plant.people["olivia"].actor, "sop_correction", "B-1",
                                             {"batch_id": "B-1"}).id
    plant.complete("olivia", correction, "request_correction",
                   {"step_number": 1, "parameter": "weight", "new_value": 0.502,
                    "correction_reason": "printout"},
                   "Performed")
    plant.complete("sam", correction, "approve_correction", {"correction_decision": "approve"}, "Approved")


def test_the_record_hash_is_over_its_facts_stable_while_nothing_changes_and_changes_with_the_record(
        plant: Plant) -> None:
    run_batch(plant)
    first = plant.engine.pack(GmpServices).batch_record("B-1")
    facts = {k: v for k, v in first.items() if k not in ("sha256", "generated_at", "audit_trail")}
    assert first["sha256"] == sha256_hex(canonical_json(normalized(facts)))  # what it is computed over
    plant.clock.advance(hours=3)
    release = plant.instance("batch_release", "B-1")
    plant.engine.claim_task(plant.people["quinn"], plant.task("quinn", release, "review_record").id)
    again = plant.engine.pack(GmpServices).batch_record("B-1")
    assert again["generated_at"] != first["generated_at"] and again["audit_trail"] != first["audit_trail"]
    assert again["sha256"] == first["sha256"]  # a new copy, a claim: no fact changed
    served = api_for(plant)("GET", "/api/v1/batches/B-1/record", "quinn")
    assert served.status_code == 200 and served.json["sha256"] == first["sha256"]
    assert first["sha256"] in plant.engine.pack(GmpServices).batch_record("B-1", "html")
    correct_step_1(plant)
    assert plant.engine.pack(GmpServices).batch_record("B-1")["sha256"] != first["sha256"]


def test_the_review_task_shows_the_hash_and_a_signature_keeps_the_record_it_was_given(plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    task = plant.task("quinn", release, "review_record")
    record = plant.engine.pack(GmpServices).batch_record("B-1")
    app = create_app({"SECRET_KEY": "record-hash", "SESSION_COOKIE_SECURE": False}, engine=plant.engine)
    web = app.test_client()
    browser_session(app, web, plant.engine, "quinn")
    page = web.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert f'<code id="record-sha256">{record["sha256"]}</code>' in page
    assert f'name="sig_record_sha256" value="{record["sha256"]}"' in page  # the form sends what it showed
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    form = {"data": '{"record_reviewed": true, "review_comment": "ok"}', "sign": "1", "sig_username": "quinn",
            "sig_password": PASSWORD, "sig_meaning": "Reviewed", "sig_record_sha256": record["sha256"],
            **({"csrf_token": token.group(1)} if token else {})}
    assert web.post(f"/tasks/{task.id}/complete", data=form).status_code == 302
    with plant.engine.session() as session:
        signature = session.scalars(select(Signature).where(Signature.task_guid == task.task_guid)).one()
        created = session.scalars(select(AuditEvent).where(AuditEvent.action == "signature.created",
                                                           AuditEvent.object_id == str(signature.id))).one()
    kept = signature.record["read_record"]
    assert (kept["kind"], kept["key"], kept["sha256"]) == ("batch", "B-1", record["sha256"])
    assert kept["content"]["steps"] == normalized(record["steps"])
    assert created.after["record_sha256"] == record["sha256"]
    assert plant.engine.verify_audit().ok


@pytest.mark.parametrize("password", [PASSWORD, "wrong password"])
def test_signing_a_record_that_changed_since_it_was_shown_is_refused_record_changed(
        plant: Plant, password: str) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    call = api_for(plant)
    shown = call("GET", "/api/v1/batches/B-1/record", "quinn").json["sha256"]
    correct_step_1(plant)  # meanwhile
    task = plant.task("quinn", release, "review_record")
    before = snapshot(plant.database)
    answer = call("POST", f"/api/v1/tasks/{task.id}/complete", "quinn",
                  {"data": REVIEWED, "signature": review_signature("quinn", shown, password)})
    assert (answer.status_code, answer.json["code"]) == (409, "record_changed")
    now = plant.engine.pack(GmpServices).batch_record("B-1")["sha256"]
    assert now != shown and now in answer.json["detail"]  # the detail names the record's hash now
    assert snapshot(plant.database) == before  # nothing stored, nothing audited
    with plant.engine.session() as session:
        assert get_user(session, "quinn").failed_attempts == 0  # not counted toward lockout
    current = call("GET", "/api/v1/batches/B-1/record", "quinn").json["sha256"]
    signed = call("POST", f"/api/v1/tasks/{task.id}/complete", "quinn",
                  {"data": REVIEWED, "signature": review_signature("quinn", current)})
    assert signed.status_code == 200, signed.json


def test_a_signature_on_the_record_without_the_hash_it_was_shown_is_refused(plant: Plant) -> None:
    run_batch(plant)
    task = plant.task("quinn", plant.instance("batch_release", "B-1"), "review_record")
    call = api_for(plant).sign_in("quinn")
    before = snapshot(plant.database)
    answer = call("POST", f"/api/v1/tasks/{task.id}/complete", "quinn",
                  {"data": REVIEWED, "signature": review_signature("quinn", None)})
    assert answer.json["code"] == "record_sha256_required" and answer.status_code in (400, 422)
    assert snapshot(plant.database) == before


def test_audit_verify_detects_a_kept_record_that_does_not_match_the_hash_signed(plant: Plant) -> None:
    run_batch(plant)
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
    assert plant.engine.verify_audit().ok
    with plant.engine.session() as session:
        signature = session.scalars(select(Signature).order_by(Signature.id.desc())).first()
        forged = dict(signature.record)
    forged["read_record"] = {**forged["read_record"], "content": {
        **forged["read_record"]["content"], "exceptions": []}}  # the record "shown" had no exceptions
    # an attacker with database rights rewrites the kept record and the signature's own hash consistently
    with plant.database.engine.begin() as conn:
        if plant.database.is_postgres:
            conn.execute(text("ALTER TABLE signature DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER signature_no_update"))
        conn.execute(text("UPDATE signature SET record = :record, record_hash = :hash WHERE id = :id"),
                     {"record": canonical_json(forged), "hash": sha256_hex(canonical_json(forged)),
                      "id": signature.id})
        if plant.database.is_postgres:
            conn.execute(text("ALTER TABLE signature ENABLE TRIGGER USER"))
    report = plant.engine.verify_audit()
    assert not report.ok and report.reason == (f"signature {signature.id}: the record it was given does not "
                                               "match the record hash it signed")
