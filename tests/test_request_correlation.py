"""One request, one id in the audit trail: the units of work a service opens for a request carry its
``correlation_id`` (the client's sane ``X-Request-Id``, else a new one, named in the response), and every
audit event recorded in them stores it (``audit_event.correlation_id``, hashed into the chain). Master-data
writes, lot receipts and sign-in take the request's context too, so their rows and events carry its time."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.audit import Actor
from engine.errors import AuthenticationFailed, SignatureRejected, ValidationFailed
from engine.identity import Principal
from engine.request_context import RequestContext
from engine.services import Gmpflow
from engine.store.models import AuthSession
from gmp.services import GmpServices
from tests.api_support import ACCOUNTS, DEMO, PASSWORD, Api, body
from tests.conftest import ADMIN, ROOT, principal
from tests.masterdata_support import material
from tests.session_support import browser_session
from tests.signing_support import PASSWORD as SIGNING_PASSWORD
from tests.signing_support import open_task, run_to_approval, sig
from tests.tamper_support import raw, unguarded
from webapp import create_app

RECORDS = "/api/v1/masterdata/types/material/records"
LOT = {"lot_id": "PARA-001", "material": "MAT-PARACETAMOL", "quantity": 25, "uom": "kg",
       "expiry": "2027-01-05", "supplier_lot": "ACME-1"}


def _last_seq(engine: Gmpflow) -> int:
    return max((e.seq for e in engine.audit_events(limit=100_000)), default=0)


def _events(engine: Gmpflow, since: int) -> list[Any]:
    return [e for e in engine.audit_events(limit=100_000) if e.seq > since]


def _browser(api: Api, engine: Gmpflow, username: str) -> Any:
    api.ensure_user(username)
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    client = app.test_client()
    browser_session(app, client, engine, username)
    return client


@pytest.fixture
def steward(api: Api, engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> str:
    """dana, a data steward with a token, and the shipped master-data types."""
    engine.masterdata.load_types(ADMIN)
    monkeypatch.setitem(ACCOUNTS, "dana", ["data_steward"])
    api.token("dana")
    return "dana"


# -- the services: one request, one time, one id ---------------------------------------------------------
def test_every_record_and_event_of_an_import_carries_the_requests_time_reason_and_id(engine: Gmpflow,
                                                                                      clock: Any) -> None:
    engine.masterdata.load_types(ADMIN)
    context = RequestContext.of(principal("dana", "data_steward"), clock.now(),
                                correlation_id="imp-1").because("supplier list 2026")
    clock.advance(minutes=5)  # the request waited: it still happened when it came
    seen = _last_seq(engine)
    versions = engine.masterdata.import_records(context, [
        {"type": "material", "key": "MAT-1", "title": "Lactose", "data": material("MAT-1")},
        {"type": "material", "key": "MAT-2", "title": "Starch", "data": material("MAT-2")}])
    events = _events(engine, seen)
    assert [e.action for e in events] == ["masterdata.record_created"] * 2
    assert {(e.at, e.actor_id, e.reason, e.correlation_id) for e in events} == {
        (context.at, "dana", "supplier list 2026", "imp-1")}
    assert {(v.created_at, v.changed_at, v.record.created_at) for v in versions} == {(context.at,) * 3}


def _recorded_as_its_request(engine: Gmpflow, clock: Any, action: str, write: Any) -> None:
    """``write`` for a steward's request that waited a minute records one ``action`` at the request's time
    with its id, and dates the version by it."""
    context = RequestContext.of(principal("dana", "data_steward"), clock.now(), correlation_id=action)
    clock.advance(minutes=1)
    seen = _last_seq(engine)
    version = write(context)
    assert [(e.action, e.at, e.correlation_id) for e in _events(engine, seen)] == [
        (action, context.at, action)]
    assert (version.changed_at, version.changed_by) == (context.at, "dana")


def test_each_master_data_write_is_recorded_at_its_requests_time_with_its_id(engine: Gmpflow,
                                                                            clock: Any) -> None:
    engine.masterdata.load_types(ADMIN)
    md = engine.masterdata
    _recorded_as_its_request(engine, clock, "masterdata.record_created", lambda c: md.create_record(
        c, "material", "MAT-1", "Lactose", material("MAT-1")))
    _recorded_as_its_request(engine, clock, "masterdata.draft_updated", lambda c: md.update_draft(
        c, "material", "MAT-1", 1, material("MAT-1", supplier="Beta")))
    _recorded_as_its_request(engine, clock, "masterdata.version_submitted", lambda c: md.submit(
        c, "material", "MAT-1", 1))
    md.make_effective(ADMIN, md.version("material", "MAT-1", 1).id, None, None)  # the change control's step
    _recorded_as_its_request(engine, clock, "masterdata.draft_created", lambda c: md.save_draft(
        c, "material", "MAT-1", material("MAT-1", supplier="Gamma")))  # no draft open: a new one
    _recorded_as_its_request(engine, clock, "masterdata.draft_updated", lambda c: md.save_draft(
        c, "material", "MAT-1", material("MAT-1", supplier="Delta")))  # the draft open now


def test_a_refused_master_data_write_stores_nothing(engine: Gmpflow, clock: Any) -> None:
    engine.masterdata.load_types(ADMIN)
    seen = _last_seq(engine)
    context = RequestContext.of(principal("dana", "data_steward"), clock.now(), correlation_id="bad-md")
    with pytest.raises(ValidationFailed) as refused:
        engine.masterdata.import_records(context, [
            {"type": "material", "key": "MAT-1", "title": "Lactose", "data": material("MAT-1")},
            {"type": "material", "key": "MAT-2", "title": "Starch", "data": {"id": 5}}])
    assert refused.value.code == "import_failed"
    assert _events(engine, seen) == [] and engine.masterdata.records("material") == []


def test_every_event_of_a_signed_completion_carries_the_requests_id(
        engine: Gmpflow, clock: Any, people: dict[str, Principal], signed_release: Any) -> None:
    instance = run_to_approval(engine, people)
    task = open_task(engine, people["quinn"], instance.id, "approve")
    context = RequestContext.of(people["quinn"], clock.now(), correlation_id="approve-1")
    seen = _last_seq(engine)
    engine.complete_task(context, task.id, {"decision": "release"}, sig("quinn", "Approved"))
    events = _events(engine, seen)
    assert {"signature.created", "task.completed", "instance.completed"} <= {e.action for e in events}
    assert {(e.at, e.correlation_id) for e in events} == {(context.at, "approve-1")}


def test_the_engines_own_work_carries_no_correlation_id_and_a_retry_its_requests(
        engine: Gmpflow, deploy: Any, clock: Any) -> None:
    deploy("service_retry_incident.bpmn")
    engine.start_instance(ADMIN, "service_retry_incident", None, {"fail_times": 3})
    seen = _last_seq(engine)
    for _ in range(3):  # three failing attempts: two retries scheduled, then an incident
        engine.run_jobs_once()
        clock.advance(seconds=2)
    by_jobs = _events(engine, seen)
    assert {"job.retry_scheduled", "incident.opened"} <= {e.action for e in by_jobs}
    assert {(e.actor_id, e.correlation_id) for e in by_jobs} == {("system", None)}
    assert RequestContext.engines_own(clock.now()).correlation_id is None  # a message a job sends
    [incident] = engine.list_incidents()
    engine.retry_incident(RequestContext.of(ADMIN, clock.now(), correlation_id="retry-9"), incident.id,
                          "ERP back online")
    [retried] = engine.audit_events(action="incident.retried")
    assert retried.correlation_id == "retry-9"


def test_a_message_a_completion_throws_is_delivered_by_the_engine_under_no_requests_id(
        engine: Gmpflow, deploy: Any, clock: Any, users: Any) -> None:
    deploy("message_throw_receiver.bpmn")
    deploy("message_throw_sender.bpmn")
    receiver = engine.start_instance(ADMIN, "message_throw_receiver", "LOT-5")
    sender = engine.start_instance(ADMIN, "message_throw_sender", "LOT-5", {"lot": "LOT-5"})
    olivia = principal("olivia", "operator")
    [task] = engine.list_tasks(olivia, instance_id=sender.id)
    engine.complete_task(RequestContext.of(olivia, clock.now(), correlation_id="finish-1"), task.id,
                         {"units": 1200})
    [completed] = engine.audit_events(object_id=str(sender.id), action="instance.completed")
    assert completed.correlation_id == "finish-1"
    assert engine.run_jobs_once() == 1  # the thrown message travels as a job, after the commit
    [delivered] = engine.audit_events(object_id=str(receiver.id), action="message.correlated")
    assert (delivered.actor_id, delivered.correlation_id) == ("system", None)


# -- through the web app: the id named in the response is the one stored -------------------------------------
def test_a_record_created_through_the_api_stores_the_clients_request_id(api: Api, engine: Gmpflow,
                                                                       clock: Any, steward: str) -> None:
    clock.advance(minutes=2)
    response = api.post(RECORDS, as_=steward, headers={"X-Request-Id": "md-create-1"},
                        json={"key": "MAT-1", "title": "Lactose", "data": material("MAT-1")})
    assert (response.status_code, response.headers["X-Request-Id"]) == (201, "md-create-1")
    [event] = engine.audit_events(correlation_id="md-create-1")
    assert (event.action, event.actor_id, event.at) == ("masterdata.record_created", "dana", clock.now())


@pytest.mark.parametrize("given", ["a b", "x" * 101, "semi;colon"])
def test_an_insane_request_id_is_replaced_and_the_new_one_is_stored(api: Api, engine: Gmpflow, steward: str,
                                                                    given: str) -> None:
    assert api.post(RECORDS, as_=steward, json={"key": "MAT-1", "title": "Lactose",
                                                "data": material("MAT-1")}).status_code == 201
    response = api.call("PUT", f"{RECORDS}/MAT-1/versions/1", as_=steward, headers={"X-Request-Id": given},
                        json={"data": material("MAT-1", supplier="Beta")})
    named = response.headers["X-Request-Id"]
    assert response.status_code == 200 and named != given and len(named) == 32
    [event] = engine.audit_events(correlation_id=named)
    assert event.action == "masterdata.draft_updated"
    assert engine.audit_events(correlation_id=given[:100]) == []


def test_a_new_draft_and_an_import_through_the_api_store_their_request_ids(api: Api, engine: Gmpflow,
                                                                          steward: str) -> None:
    response = api.post("/api/v1/masterdata/import", as_=steward, headers={"X-Request-Id": "imp-api"},
                        json={"records": [{"type": "material", "key": "MAT-1", "title": "Lactose",
                                           "data": material("MAT-1")}]})
    assert (response.status_code, response.headers["X-Request-Id"]) == (201, "imp-api")
    assert [e.action for e in engine.audit_events(correlation_id="imp-api")] == ["masterdata.record_created"]
    assert api.post(f"{RECORDS}/MAT-1/versions/1/submit", as_=steward).status_code == 200
    engine.masterdata.make_effective(ADMIN, engine.masterdata.version("material", "MAT-1", 1).id, None, None)
    response = api.post(f"{RECORDS}/MAT-1/versions", as_=steward, json={}, headers={"X-Request-Id": "nd-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (201, "nd-1")
    assert [e.action for e in engine.audit_events(correlation_id="nd-1")] == ["masterdata.draft_created"]


def test_a_refused_import_through_the_api_stores_nothing_and_names_its_request(api: Api, engine: Gmpflow,
                                                                              steward: str) -> None:
    seen = _last_seq(engine)
    response = api.post("/api/v1/masterdata/import", as_=steward, headers={"X-Request-Id": "imp-bad"},
                        json={"records": [{"type": "material", "key": "MAT-1", "title": "Lactose",
                                           "data": {"id": 5}}]})
    assert (response.status_code, body(response)["code"], response.headers["X-Request-Id"]) == (
        400, "import_failed", "imp-bad")
    assert _events(engine, seen) == [] and engine.masterdata.records("material") == []


def test_a_draft_saved_on_the_master_data_page_is_the_stewards_request(api: Api, engine: Gmpflow, clock: Any,
                                                                      steward: str) -> None:
    engine.masterdata.create_record(ADMIN, "material", "MAT-1", "Lactose", material("MAT-1"))
    client = _browser(api, engine, steward)
    clock.advance(minutes=1)
    form = {f"/{k}": str(v) for k, v in material("MAT-1", supplier="Beta").items()}
    response = client.post("/masterdata/material/MAT-1/draft", data=form, headers={"X-Request-Id": "page-md"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (302, "page-md")
    [event] = engine.audit_events(correlation_id="page-md")
    assert (event.action, event.actor_id, event.at) == ("masterdata.draft_updated", "dana", clock.now())


def test_a_lot_and_its_dispositions_start_are_one_request_through_the_api(api: Api, engine: Gmpflow,
                                                                         deploy: Any, clock: Any) -> None:
    deploy(ROOT / "gmp" / "processes" / "lot_disposition")
    api.token("erin")
    clock.advance(minutes=3)
    seen = _last_seq(engine)
    response = api.post("/api/v1/lots", as_="erin", json=LOT, headers={"X-Request-Id": "lot-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (201, "lot-1")
    events = _events(engine, seen)
    assert {"lot.created", "instance.started"} <= {e.action for e in events}
    assert {(e.at, e.correlation_id) for e in events} == {(clock.now(), "lot-1")}


def test_a_lot_refused_for_its_role_is_audited_with_the_requests_id_and_stores_nothing(
        api: Api, engine: Gmpflow, deploy: Any) -> None:
    deploy(ROOT / "gmp" / "processes" / "lot_disposition")
    api.token("olivia")
    seen = _last_seq(engine)
    response = api.post("/api/v1/lots", as_="olivia", json=LOT, headers={"X-Request-Id": "lot-no"})
    assert (response.status_code, body(response)["code"], response.headers["X-Request-Id"]) == (
        403, "not_permitted", "lot-no")
    assert [(e.actor_id, e.correlation_id) for e in _events(engine, seen)] == [("olivia", "lot-no")]
    assert engine.pack(GmpServices).list_lots() == []


def test_failed_sign_ins_and_the_lockout_carry_their_requests_ids(api: Api, engine: Gmpflow,
                                                                  clock: Any) -> None:
    api.ensure_user("olivia")
    attempts = engine.config.lockout_attempts
    for n in range(attempts):
        clock.advance(seconds=30)
        response = api.post("/api/v1/tokens", headers={"X-Request-Id": f"login-{n}"},
                            json={"username": "olivia", "password": "not the password"})
        assert (response.status_code, response.headers["X-Request-Id"]) == (401, f"login-{n}")
    failed = engine.audit_events(object_id="olivia", action="user.login_failed")
    assert [e.correlation_id for e in failed] == [f"login-{n}" for n in range(attempts)]
    [locked] = engine.audit_events(object_id="olivia", action="user.locked")
    assert (locked.correlation_id, locked.at) == (f"login-{attempts - 1}", clock.now())


def test_a_sign_in_at_a_past_request_time_is_recorded_and_issued_then(api: Api, engine: Gmpflow,
                                                                      clock: Any) -> None:
    api.ensure_user("olivia")
    refused = RequestContext.claimed("olivia", clock.now(), correlation_id="si-1")
    clock.advance(minutes=2)
    with pytest.raises(AuthenticationFailed):
        engine.sign_in(refused, "not the password", "key")
    [event] = engine.audit_events(object_id="olivia", action="user.login_failed")
    assert (event.at, event.correlation_id) == (refused.at, "si-1")
    context = RequestContext.claimed("olivia", clock.now(), correlation_id="si-2")
    clock.advance(minutes=2)
    _, _, expires = engine.sign_in(context, PASSWORD, "key")
    assert expires == context.at.replace(microsecond=0) + timedelta(hours=engine.config.token_hours)


def test_a_failed_sign_in_on_the_login_page_and_a_sign_out_are_their_requests(api: Api, engine: Gmpflow,
                                                                              clock: Any) -> None:
    api.ensure_user("olivia")
    client = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False},
                        engine=engine).test_client()
    response = client.post("/login", data={"username": "olivia", "password": "nope"},
                           headers={"X-Request-Id": "page-login"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (401, "page-login")
    [event] = engine.audit_events(object_id="olivia", action="user.login_failed")
    assert event.correlation_id == "page-login"
    assert client.post("/login", data={"username": "olivia", "password": PASSWORD}).status_code == 302
    clock.advance(minutes=7)
    response = client.post("/logout", headers={"X-Request-Id": "page-out"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (302, "page-out")
    with engine.db.read() as session:
        [ended] = session.scalars(select(AuthSession).where(AuthSession.revoked_at.is_not(None))).all()
    assert ended.revoked_at == clock.now()


# -- the trail: verified with the ids, searchable by them ----------------------------------------------------
def test_the_chain_verifies_with_correlation_ids_and_breaks_when_one_is_edited(
        engine: Gmpflow, clock: Any, people: dict[str, Principal]) -> None:
    context = RequestContext.of(ADMIN, clock.now(), correlation_id="grant-1").because("trained, SOP-12")
    engine.grant_role(context, "olivia", "qa")
    [event] = engine.audit_events(correlation_id="grant-1")
    assert event.action == "user.role_granted" and engine.verify_audit().ok
    with unguarded(engine):
        raw(engine, "UPDATE audit_event SET correlation_id = 'forged' WHERE seq = :seq", seq=event.seq)
        report = engine.verify_audit()
    assert (report.ok, report.first_broken) == (False, event.seq)


def test_an_auditor_finds_every_event_of_a_request_by_its_id(api: Api, engine: Gmpflow, deploy: Any) -> None:
    deploy(DEMO)
    response = api.post("/api/v1/process-definitions/demo_approval/instances", as_="olivia",
                        json={"business_key": "REQ-9", "variables": {}}, headers={"X-Request-Id": "start-9"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (201, "start-9")
    found = body(api.get("/api/v1/audit?correlation_id=start-9", as_="ada"))
    assert "instance.started" in {e["action"] for e in found}
    assert {e["correlation_id"] for e in found} == {"start-9"}
    client = _browser(api, engine, "ada")
    page = client.get("/admin/audit?correlation_id=start-9")
    assert page.status_code == 200 and "request start-9" in page.get_data(as_text=True)
    exported = client.get("/admin/audit/export.csv?correlation_id=start-9").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows and {row["correlation_id"] for row in rows} == {"start-9"}


def test_searching_the_trail_by_request_is_for_audit_readers_and_takes_only_an_id(api: Api) -> None:
    """The filter is the audit trail's: an operator is refused, and a value no request id can have is a
    bad filter, not a search."""
    refused = api.get("/api/v1/audit?correlation_id=start-9", as_="olivia")
    assert (refused.status_code, body(refused)["code"]) == (403, "role_required")
    too_long = api.get(f"/api/v1/audit?correlation_id={'x' * 101}", as_="ada")
    assert (too_long.status_code, body(too_long)["code"]) == (400, "bad_filter")


def test_a_request_made_by_the_cli_or_a_test_is_a_request_of_its_own(engine: Gmpflow, people: Any) -> None:
    engine.grant_role(ADMIN, "olivia", "qa", "trained")
    engine.grant_role(Actor.system(), "oscar", "qa", "trained")
    first, second = engine.audit_events(action="user.role_granted")
    assert None not in (first.correlation_id, second.correlation_id)
    assert first.correlation_id != second.correlation_id


def test_a_signing_failure_counts_with_the_completions_request_id(
        engine: Gmpflow, clock: Any, people: dict[str, Principal], signed_release: Any) -> None:
    instance = run_to_approval(engine, people)
    task = open_task(engine, people["quinn"], instance.id, "approve")
    context = RequestContext.of(people["quinn"], clock.now(), correlation_id="sign-bad")
    with pytest.raises(SignatureRejected):
        engine.complete_task(context, task.id, {"decision": "release"},
                             sig("quinn", "Approved", SIGNING_PASSWORD + "x"))
    [failed] = engine.audit_events(action="user.signing_failed")
    assert (failed.correlation_id, failed.at) == ("sign-bad", context.at)
