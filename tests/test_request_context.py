"""One request context (who, when, why, and an id naming the request) made once per HTTP request and passed to
the services (``engine.request_context``, ``webapp.request_context``): the instance lifecycle and the task
actions (claim, unclaim, complete with its signature) take it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g

from engine.audit import Actor
from engine.bootstrap import deploy_shipped
from engine.errors import PermissionDenied, SignatureRejected, ValidationFailed
from engine.identity import Principal
from engine.request_context import RequestContext, as_request
from engine.services import Gmpflow
from engine.signatures import utc_iso
from tests.api_support import ACCOUNTS, DEMO, PASSWORD, Api, body, open_task, start_demo
from tests.conftest import ADMIN, ROOT, principal
from tests.engine_support import request_of
from tests.masterdata_support import material
from tests.session_support import browser_session
from tests.signing_support import open_task as open_task_of
from tests.signing_support import run_to_approval, sig
from webapp import create_app
from webapp.request_context import request_context


def test_a_principals_request_carries_its_actor_and_roles_the_engines_only_its_actor(clock: Any) -> None:
    ada = principal("ada", "admin")
    assert RequestContext.of(ada, clock.now()).principal == ada
    assert RequestContext.of(ada, clock.now()).actor == Actor("ada", "Ada")
    engine_itself = RequestContext.of(Actor.system(), clock.now())
    assert (engine_itself.principal, engine_itself.actor) == (None, Actor.system())


@pytest.mark.parametrize("given", [None, "", "two words", "x" * 101, "id\r\nX-Evil: 1", "é"])
def test_a_client_id_that_is_no_sane_id_is_replaced_by_a_new_one(clock: Any, given: str | None) -> None:
    made = RequestContext.of(ADMIN, clock.now(), correlation_id=given).correlation_id
    assert made != given and len(made) == 32 and int(made, 16) >= 0


def test_a_sane_client_id_names_the_request_and_a_reason_changes_nothing_else(clock: Any) -> None:
    context = RequestContext.of(ADMIN, clock.now(), correlation_id="req-42.a:b")
    assert context.correlation_id == "req-42.a:b"
    because = context.because("deviation DEV-7")
    assert (because.reason, because.actor, because.at, because.correlation_id) == (
        "deviation DEV-7", ADMIN, clock.now(), "req-42.a:b")
    assert context.reason is None


def test_the_web_app_makes_one_context_per_request(app: Flask, clock: Any) -> None:
    ada = principal("ada", "admin")
    asked_at = clock.now()
    with app.test_request_context(headers={"X-Request-Id": "web-1"}):
        g.principal = ada
        first = request_context("hold")
        clock.advance(minutes=1)
        second = request_context("go on")
        assert (first.reason, second.reason) == ("hold", "go on")
        assert first.at == second.at == asked_at
        assert (first.principal, first.correlation_id) == (second.principal, second.correlation_id) == (
            ada, "web-1")
    with app.test_request_context():
        g.principal = ada
        assert request_context().correlation_id != "web-1"


def test_a_suspension_through_the_api_is_audited_as_the_requests_actor_time_and_reason(
        api: Api, engine: Gmpflow, deploy: Any, clock: Any) -> None:
    deploy(DEMO)
    instance = start_demo(api)
    clock.advance(minutes=5)
    asked_at = clock.now()
    response = api.post(f"/api/v1/instances/{instance['id']}/suspend", as_="ada",
                        json={"reason": "deviation DEV-7"}, headers={"X-Request-Id": "api-7"})
    assert response.status_code == 200
    [event] = [e for e in engine.audit_events(object_type="instance", object_id=str(instance["id"]))
               if e.action == "instance.suspended"]
    assert (event.actor_id, event.at, event.reason) == ("ada", asked_at, "deviation DEV-7")


def test_a_suspension_from_the_admin_page_is_audited_as_the_signed_in_admin(api: Api, engine: Gmpflow,
                                                                              deploy: Any) -> None:
    deploy(DEMO)
    instance = start_demo(api)
    api.ensure_user("ada")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    client = app.test_client()
    browser_session(app, client, engine, "ada")
    response = client.post(f"/admin/instances/{instance['id']}/suspend", data={"reason": "line clearance"})
    assert response.status_code == 302
    [event] = engine.audit_events(object_type="instance", object_id=str(instance["id"]),
                                  action="instance.suspended")
    assert (event.actor_id, event.reason) == ("ada", "line clearance")


def test_the_service_refuses_a_request_without_a_reason_and_changes_nothing(engine: Gmpflow, deploy: Any,
                                                                            users: Any) -> None:
    deploy(DEMO)
    started = engine.start_instance(ADMIN, "demo_approval", "REQ-1")
    before = len(engine.audit_events())
    with pytest.raises(ValidationFailed) as refused:
        engine.change_instance_status(request_of(engine, ADMIN), started.id, "suspend")
    assert refused.value.code == "reason_required"
    assert engine.instance_status(started.id).status == "waiting" and len(engine.audit_events()) == before


def test_a_principal_is_a_request_of_its_own_made_now_and_a_context_is_kept_as_it_is(clock: Any) -> None:
    ada = principal("ada", "admin")
    made = as_request(ada, clock)
    assert (made.principal, made.actor, made.at, made.reason) == (ada, ada.actor, clock.now(), None)
    context = RequestContext.of(ada, clock.now(), correlation_id="kept").because("why")
    clock.advance(minutes=1)
    assert as_request(context, clock) is context


def _last_seq(engine: Gmpflow) -> int:
    return max(e.seq for e in engine.audit_events(limit=100_000))


def _events(engine: Gmpflow, since: int) -> list[Any]:
    return [e for e in engine.audit_events(limit=100_000) if e.seq > since]


def test_every_audit_event_of_a_signed_completion_carries_the_requests_time(
        engine: Gmpflow, clock: Any, people: dict[str, Principal], signed_release: Any) -> None:
    instance = run_to_approval(engine, people)
    task = open_task_of(engine, people["quinn"], instance.id, "approve")
    context = RequestContext.of(people["quinn"], clock.now(), correlation_id="approve-1")
    clock.advance(minutes=10)  # the request waited (a lock, a slow client): it still happened when it came
    seen = _last_seq(engine)
    engine.complete_task(context, task.id, {"decision": "release"}, sig("quinn", "Approved"))
    events = _events(engine, seen)
    assert {e.action for e in events} >= {"signature.created", "task.completed", "instance.completed"}
    assert {(e.at, e.actor_id) for e in events} == {(context.at, "quinn")}
    [signed] = [s for s in engine.list_signatures(instance.id, reader=people["ada"])
                if s["meaning"] == "Approved"]
    assert signed["signed_at"] == utc_iso(context.at)
    ended = engine.instance_status(instance.id)
    assert (ended.status, ended.ended_at) == ("completed", context.at)
    assert engine.verify_audit().ok


def test_a_signing_refused_for_its_password_is_counted_at_the_requests_time_and_completes_nothing(
        engine: Gmpflow, clock: Any, people: dict[str, Principal], signed_release: Any) -> None:
    instance = run_to_approval(engine, people)
    task = open_task_of(engine, people["quinn"], instance.id, "approve")
    context = RequestContext.of(people["quinn"], clock.now())
    clock.advance(minutes=1)
    seen = _last_seq(engine)
    with pytest.raises(SignatureRejected) as refused:
        engine.complete_task(context, task.id, {"decision": "release"}, sig("quinn", "Approved", "wrong"))
    assert refused.value.code == "signature_password_invalid"
    assert engine.get_task(people["quinn"], task.id).state == "open"
    assert [(e.action, e.actor_id, e.at) for e in _events(engine, seen)] == [
        ("user.signing_failed", "quinn", context.at)]


def test_the_engine_itself_works_on_no_human_task(engine: Gmpflow, deploy: Any, users: Any) -> None:
    deploy(DEMO)
    started = engine.start_instance(ADMIN, "demo_approval", "REQ-1")
    olivia = principal("olivia", "operator")
    [task] = engine.list_tasks(olivia, instance_id=started.id)
    before = len(engine.audit_events())
    for act in (lambda c: engine.claim_task(c, task.id), lambda c: engine.complete_task(c, task.id, {})):
        with pytest.raises(PermissionDenied) as refused:
            act(request_of(engine, Actor.system()))
        assert refused.value.code == "not_permitted"
    assert engine.get_task(olivia, task.id).state == "open" and len(engine.audit_events()) == before


def test_a_claim_through_the_api_is_audited_at_the_requests_time_and_named_in_its_response(
        api: Api, engine: Gmpflow, deploy: Any, clock: Any) -> None:
    deploy(DEMO)
    instance = start_demo(api)
    task = open_task(api, instance["id"], "olivia")
    clock.advance(minutes=3)
    response = api.post(f"/api/v1/tasks/{task['id']}/claim", as_="olivia",
                        headers={"X-Request-Id": "claim-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (200, "claim-1")
    [event] = engine.audit_events(object_type="task", object_id=str(task["id"]), action="task.claimed")
    assert (event.actor_id, event.at) == ("olivia", clock.now())
    response = api.post(f"/api/v1/tasks/{task['id']}/unclaim", as_="olivia", headers={"X-Request-Id": "a b"})
    assert response.status_code == 200
    named = response.headers["X-Request-Id"]
    assert named != "a b" and len(named) == 32 and int(named, 16) >= 0


def test_a_refused_completion_through_the_api_names_its_request_too(api: Api, deploy: Any) -> None:
    deploy(DEMO)
    instance = start_demo(api)
    task = open_task(api, instance["id"], "olivia")
    response = api.post(f"/api/v1/tasks/{task['id']}/complete", as_="olivia", json={"data": {"nope": 1}},
                        headers={"X-Request-Id": "bad-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (422, "bad-1")
    assert (response.mimetype, body(response)["code"]) == ("application/problem+json", "undeclared_field")
    assert body(api.get(f"/api/v1/tasks/{task['id']}", as_="olivia"))["state"] == "open"


def test_a_request_that_acts_on_nothing_is_not_named(api: Api, deploy: Any) -> None:
    deploy(DEMO)
    start_demo(api)
    response = api.get("/api/v1/tasks", as_="olivia", headers={"X-Request-Id": "read-1"})
    assert response.status_code == 200 and "X-Request-Id" not in response.headers


def test_a_claim_and_a_completion_from_the_task_page_are_the_signed_in_users(api: Api, engine: Gmpflow,
                                                                           deploy: Any, clock: Any) -> None:
    deploy(DEMO)
    instance = start_demo(api)
    task = open_task(api, instance["id"], "olivia")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    client = app.test_client()
    browser_session(app, client, engine, "olivia")
    clock.advance(minutes=2)
    response = client.post(f"/tasks/{task['id']}/claim", headers={"X-Request-Id": "page-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (302, "page-1")
    [event] = engine.audit_events(object_type="task", object_id=str(task["id"]), action="task.claimed")
    assert (event.actor_id, event.at) == ("olivia", clock.now())


def test_a_start_and_its_events_carry_the_requests_time_its_timers_and_jobs_the_engines(
        engine: Gmpflow, deploy: Any, clock: Any) -> None:
    deploy("restart_survival.bpmn")  # a two-hour timer and a service call, side by side, at the start
    context = RequestContext.of(Actor("erp", "ERP interface"), clock.now())
    clock.advance(minutes=10)
    started = engine.start_instance(context, "restart_survival", "R-1", {"material": "M-1"})
    assert started.started_at == context.at
    [event] = engine.audit_events(object_type="instance", object_id=str(started.id),
                                  action="instance.started")
    assert (event.actor_id, event.at) == ("erp", context.at)
    jobs = {job.kind: job for job in engine.instance_detail(started.id)["jobs"]}
    assert {job.created_at for job in jobs.values()} == {clock.now()}
    two_hours = clock.now() + timedelta(hours=2)  # the engine's clock runs its timers (not the request's)
    assert two_hours <= jobs["timer"].due_at < two_hours + timedelta(seconds=1)


def test_a_start_and_a_message_through_the_api_are_the_requests(api: Api, engine: Gmpflow, deploy: Any,
                                                              clock: Any) -> None:
    deploy("message_correlation_key.bpmn")
    response = api.post("/api/v1/process-definitions/message_correlation_key/instances", as_="ada",
                        json={"business_key": "S-7", "variables": {}}, headers={"X-Request-Id": "start-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (201, "start-1")
    instance_id = str(body(response)["id"])
    clock.advance(minutes=4)
    response = api.post("/api/v1/messages", as_="erin", headers={"X-Request-Id": "lab-1"},
                        json={"name": "lab_result", "correlation_keys": {"business_key": "S-7"},
                              "payload": {"sample_id": "S-7"}})
    assert (response.status_code, response.headers["X-Request-Id"]) == (200, "lab-1")
    events = engine.audit_events(object_type="instance", object_id=instance_id)
    assert [(e.action, e.actor_id) for e in events] == [
        ("instance.started", "ada"), ("message.correlated", "erin"), ("instance.completed", "erin")]
    assert events[1].at == events[2].at == clock.now()


def test_a_start_refused_for_its_role_is_audited_at_the_requests_time_and_starts_nothing(
        api: Api, engine: Gmpflow, deploy: Any, clock: Any) -> None:
    deploy(DEMO)  # operators start it
    response = api.post("/api/v1/process-definitions/demo_approval/instances", as_="quinn",
                        json={"business_key": "REQ-9", "variables": {}}, headers={"X-Request-Id": "no-1"})
    assert (response.status_code, body(response)["code"], response.headers["X-Request-Id"]) == (
        403, "not_permitted", "no-1")
    [refused] = engine.audit_events(actor="quinn", action="instance.start_refused")
    assert refused.at == clock.now()
    assert engine.list_instances()[1] == 0


def test_a_reason_given_to_a_service_wins_over_the_requests(clock: Any) -> None:
    context = RequestContext.of(ADMIN, clock.now()).because("from the request")
    assert (context.why("given"), context.why(None)) == ("given", "from the request")
    clock.advance(minutes=1)
    assert context.clock.now() == context.at != clock.now()  # what a request does happens at its time


def test_a_password_reset_happens_at_the_requests_time_for_its_reason(
        engine: Gmpflow, clock: Any, people: dict[str, Principal]) -> None:
    context = RequestContext.of(people["ada"], clock.now()).because("forgotten, identity checked")
    clock.advance(minutes=7)
    engine.reset_password(context, "olivia")
    [event] = engine.audit_events(object_type="user", object_id="olivia", action="user.password_reset")
    assert (event.actor_id, event.at, event.reason) == ("ada", context.at, "forgotten, identity checked")
    [olivia] = [u for u in engine.list_users() if u.username == "olivia"]
    assert (olivia.password_changed_at, olivia.must_change_password) == (context.at, True)


@pytest.mark.parametrize("act", ["reset_password", "unlock_user", "deactivate", "grant_role", "remove_role"])
def test_an_admin_request_without_a_reason_is_refused_and_changes_nothing(
        engine: Gmpflow, people: dict[str, Principal], act: str) -> None:
    context = request_of(engine, people["ada"])
    calls = {"reset_password": lambda: engine.reset_password(context, "olivia"),
             "unlock_user": lambda: engine.unlock_user(context, "olivia"),
             "deactivate": lambda: engine.set_user_active(context, "olivia", False),
             "grant_role": lambda: engine.grant_role(context, "olivia", "qa"),
             "remove_role": lambda: engine.remove_role(context, "olivia", "operator")}
    before = len(engine.audit_events(limit=100_000))
    with pytest.raises(ValidationFailed) as refused:
        calls[act]()
    assert refused.value.code == "reason_required"
    [olivia] = [u for u in engine.list_users() if u.username == "olivia"]
    assert olivia.active and not olivia.must_change_password
    assert engine.principal("olivia").roles == frozenset({"operator"})
    assert len(engine.audit_events(limit=100_000)) == before


def test_a_role_granted_through_the_api_is_the_requests_and_named_in_its_response(api: Api,
                                                                                 engine: Gmpflow) -> None:
    api.ensure_user("olivia")
    response = api.post("/api/v1/users/olivia/roles", as_="ada", headers={"X-Request-Id": "grant-1"},
                        json={"role": "qa", "reason": "trained, SOP-12"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (200, "grant-1")
    [event] = engine.audit_events(object_id="olivia", action="user.role_granted")
    assert (event.actor_id, event.reason) == ("ada", "trained, SOP-12")
    response = api.post("/api/v1/roles", as_="ada", json={"name": "qp", "description": "Qualified person",
                                                         "reason": "EU batch certification"})
    assert response.status_code == 201
    [event] = engine.audit_events(object_type="role", object_id="qp", action="role.created")
    assert (event.actor_id, event.reason) == ("ada", "EU batch certification")


def test_a_user_deactivated_and_added_from_the_admin_page_is_the_signed_in_admins_act(
        api: Api, engine: Gmpflow) -> None:
    api.ensure_user("ada")
    api.ensure_user("olivia")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    client = app.test_client()
    browser_session(app, client, engine, "ada")
    response = client.post("/admin/users/olivia/active", data={"active": "0", "reason": "left the company"})
    assert response.status_code == 302
    [event] = engine.audit_events(object_id="olivia", action="user.deactivated")
    assert (event.actor_id, event.reason) == ("ada", "left the company")
    response = client.post("/admin/users", data={"username": "nina", "full_name": "Nina New",
                                                  "password": "a long enough password", "roles": "operator"})
    assert response.status_code == 302
    [event] = engine.audit_events(object_id="nina", action="user.created")
    assert event.actor_id == "ada"


def _an_incident(engine: Gmpflow, deploy: Any, clock: Any) -> Any:
    deploy("service_retry_incident.bpmn")
    instance = engine.start_instance(ADMIN, "service_retry_incident", None, {"fail_times": 3})
    for _ in range(3):  # three failing attempts (backoff 1 s, then 2 s): an incident
        engine.run_jobs_once()
        clock.advance(seconds=2)
    [incident] = engine.list_incidents()
    assert incident.instance_id == instance.id
    return incident


def test_an_incident_retried_through_the_api_is_resolved_at_the_requests_time_its_job_due_on_the_engines(
        api: Api, engine: Gmpflow, deploy: Any, clock: Any) -> None:
    incident = _an_incident(engine, deploy, clock)
    response = api.post(f"/api/v1/incidents/{incident.id}/retry", as_="ada",
                        headers={"X-Request-Id": "retry-1"}, json={"reason": "ERP back online"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (200, "retry-1")
    [event] = engine.audit_events(object_type="incident", action="incident.retried")
    assert (event.object_id, event.actor_id, event.at, event.reason) == (
        str(incident.id), "ada", clock.now(), "ERP back online")
    [resolved] = engine.list_incidents(open_only=False)
    assert (resolved.resolved_at, resolved.resolved_by) == (clock.now(), "ada")


def test_a_retry_at_a_past_request_time_is_recorded_then_and_its_job_runs_at_the_engines_now(
        engine: Gmpflow, deploy: Any, clock: Any) -> None:
    incident = _an_incident(engine, deploy, clock)
    context = RequestContext.of(principal("ada", "admin"), clock.now()).because("ERP back online")
    clock.advance(minutes=3)
    engine.retry_incident(context, incident.id)
    [event] = engine.audit_events(object_type="incident", action="incident.retried")
    assert event.at == context.at
    [job] = [j for j in engine.instance_detail(incident.instance_id)["jobs"] if j.id == incident.job_id]
    assert job.due_at == clock.now()


def test_a_retry_without_a_reason_is_refused_and_changes_nothing(api: Api, engine: Gmpflow, deploy: Any,
                                                                 clock: Any) -> None:
    incident = _an_incident(engine, deploy, clock)
    assert api.get("/api/v1/incidents", as_="ada").status_code == 200  # ada signed in
    seen = _last_seq(engine)
    response = api.post(f"/api/v1/incidents/{incident.id}/retry", as_="ada", json={"reason": " "})
    assert (response.status_code, body(response)["code"]) == (400, "validation_failed")  # the schema's
    with pytest.raises(ValidationFailed) as refused:
        engine.retry_incident(request_of(engine, ADMIN), incident.id)
    assert refused.value.code == "reason_required"
    assert [i.id for i in engine.list_incidents()] == [incident.id]
    assert _events(engine, seen) == []


def test_an_incident_retried_from_the_admin_page_is_the_signed_in_admins(api: Api, engine: Gmpflow,
                                                                          deploy: Any, clock: Any) -> None:
    incident = _an_incident(engine, deploy, clock)
    api.ensure_user("ada")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    client = app.test_client()
    browser_session(app, client, engine, "ada")
    clock.advance(minutes=1)
    response = client.post(f"/admin/incidents/{incident.id}/retry", data={"reason": "ERP back"},
                           headers={"X-Request-Id": "page-r"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (302, "page-r")
    [event] = engine.audit_events(object_type="incident", action="incident.retried")
    assert (event.actor_id, event.at, event.reason) == ("ada", clock.now(), "ERP back")


def test_a_password_changed_through_the_api_is_the_proven_users_act_at_the_requests_time(
        api: Api, engine: Gmpflow, clock: Any) -> None:
    api.ensure_user("olivia")
    clock.advance(minutes=5)
    response = api.post("/api/v1/password", headers={"X-Request-Id": "pw-1"}, json={
        "username": "olivia", "old_password": PASSWORD, "new_password": "a new secret!"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (204, "pw-1")
    [event] = engine.audit_events(object_id="olivia", action="user.password_changed")
    assert (event.actor_id, event.actor_name, event.at) == ("olivia", "Olivia", clock.now())
    [olivia] = [u for u in engine.list_users() if u.username == "olivia"]
    assert olivia.password_changed_at == clock.now()


def test_a_password_change_at_a_past_request_time_is_recorded_then(engine: Gmpflow, clock: Any,
                                                                    people: dict[str, Principal]) -> None:
    one_time = engine.reset_password(people["ada"], "olivia", "forgotten")
    context = RequestContext.claimed("olivia", clock.now())
    clock.advance(minutes=2)
    engine.change_password(context, one_time, "my own new secret")
    [event] = engine.audit_events(object_id="olivia", action="user.password_changed")
    assert (event.actor_id, event.at) == ("olivia", context.at)


def test_a_password_change_that_breaks_the_policy_is_refused_and_changes_nothing(api: Api,
                                                                                 engine: Gmpflow) -> None:
    api.ensure_user("olivia")
    before = len(engine.audit_events(limit=100_000))
    response = api.post("/api/v1/password", headers={"X-Request-Id": "pw-2"},
                        json={"username": "olivia", "old_password": PASSWORD, "new_password": "short"})
    assert (response.status_code, body(response)["code"], response.headers["X-Request-Id"]) == (
        400, "password_too_short", "pw-2")
    assert len(engine.audit_events(limit=100_000)) == before
    assert api.post("/api/v1/tokens", json={"username": "olivia", "password": PASSWORD}).status_code == 200


def test_a_password_changed_on_the_page_is_recorded_at_the_requests_time(api: Api, engine: Gmpflow,
                                                                          clock: Any) -> None:
    api.ensure_user("olivia")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    response = app.test_client().post("/account/password", headers={"X-Request-Id": "pw-page"}, data={
        "username": "olivia", "old_password": PASSWORD, "new_password": "a new secret!",
        "repeat_password": "a new secret!"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (302, "pw-page")
    [event] = engine.audit_events(object_id="olivia", action="user.password_changed")
    assert (event.actor_id, event.at) == ("olivia", clock.now())


BPMN = Path(__file__).parent / "bpmn"


def test_a_deployment_and_its_activation_are_recorded_at_their_requests_time(engine: Gmpflow,
                                                                            clock: Any) -> None:
    pete = principal("pete", "process_owner")
    context = RequestContext.of(pete, clock.now())
    clock.advance(minutes=4)
    dep, created = engine.deploy(context, [BPMN / "message_catch.bpmn"], activate=False)
    assert created and (dep.created_at, dep.created_by, dep.status) == (context.at, "pete", "draft")
    approval = RequestContext.of(ADMIN, clock.now()).because("CC-12 approved")
    clock.advance(minutes=1)
    active = engine.activate_deployment(approval, dep.id)
    assert (active.status, active.activated_at) == ("active", approval.at)
    events = engine.audit_events(object_type="deployment", object_id=str(dep.id))
    assert [(e.action, e.actor_id, e.at, e.reason) for e in events] == [
        ("deployment.created", "pete", context.at, None),
        ("deployment.active", ADMIN.id, approval.at, "CC-12 approved")]


def _modeler(api: Api, engine: Gmpflow) -> Any:
    api.ensure_user("ada")
    engine.grant_role(ADMIN, "ada", "process_owner", "models processes")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False}, engine=engine)
    client = app.test_client()
    browser_session(app, client, engine, "ada")
    return client


def test_a_draft_saved_in_the_modeler_is_the_signed_in_owners_at_the_requests_time(
        api: Api, engine: Gmpflow, clock: Any) -> None:
    client = _modeler(api, engine)
    clock.advance(minutes=2)
    files = {"message_catch.bpmn": (BPMN / "message_catch.bpmn").read_text()}
    response = client.post("/modeler/save", json={"files": files}, headers={"X-Request-Id": "save-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (200, "save-1"), response.json
    [event] = engine.audit_events(object_type="deployment", action="deployment.created")
    assert (event.object_id, event.actor_id, event.at) == (str(response.json["id"]), "ada", clock.now())


def test_a_draft_the_lint_refuses_in_the_modeler_stores_nothing_and_names_its_request(
        api: Api, engine: Gmpflow) -> None:
    client = _modeler(api, engine)
    seen = _last_seq(engine)
    response = client.post("/modeler/save", json={"files": {"broken.bpmn": "<definitions/>"}},
                           headers={"X-Request-Id": "save-2"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (400, "save-2")
    assert response.json["problems"] and engine.definitions() == [] and _events(engine, seen) == []


def test_a_masterdata_draft_submitted_through_the_api_is_the_stewards_at_the_requests_time(
        api: Api, engine: Gmpflow, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine.masterdata.load_types(ADMIN)
    monkeypatch.setitem(ACCOUNTS, "dana", ["data_steward"])
    record = "/api/v1/masterdata/types/material/records"
    assert api.post(record, as_="dana", json={"key": "MAT-1", "title": "Lactose",
                                              "data": material("MAT-1")}).status_code == 201
    clock.advance(minutes=3)
    response = api.post(f"{record}/MAT-1/versions/1/submit", as_="dana", headers={"X-Request-Id": "md-1"})
    assert (response.status_code, response.headers["X-Request-Id"]) == (200, "md-1")
    [event] = engine.audit_events(object_type="masterdata_record", action="masterdata.version_submitted")
    assert (event.actor_id, event.at) == ("dana", clock.now())
    seen = _last_seq(engine)
    clock.advance(minutes=1)
    again = api.post(f"{record}/MAT-1/versions/1/submit", as_="dana", headers={"X-Request-Id": "md-2"})
    assert (again.status_code, again.headers["X-Request-Id"]) == (409, "md-2")
    assert _events(engine, seen) == []
    assert engine.masterdata.version("material", "MAT-1", 1).changed_at == event.at


def test_a_change_request_opened_for_a_draft_is_one_request_at_its_time(engine: Gmpflow, clock: Any) -> None:
    deploy_shipped(engine, ADMIN, ROOT / "gmp" / "processes" / "change_control")
    draft, _ = engine.deploy(ADMIN, [BPMN / "message_catch.bpmn"], activate=False)
    context = RequestContext.of(principal("pete", "process_owner"), clock.now(), correlation_id="cc-1")
    clock.advance(minutes=6)
    opened = engine.request_change(context, {
        "subject_kind": "deployment", "deployment_id": draft.id, "reason": "new message",
        "product_impact": "none", "effective_date": utc_iso(clock.now())[:10]})
    assert opened["error"] is None, opened["error"]
    events = engine.audit_events(actor="pete")
    assert {"instance.started", "task.completed"} <= {e.action for e in events}
    assert {e.at for e in events} == {context.at}
