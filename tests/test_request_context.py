"""One request context (who, when, why, and an id naming the request) made once per HTTP request and passed to
the services (``engine.request_context``, ``webapp.request_context``); the instance lifecycle takes it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g

from engine.audit import Actor
from engine.errors import ValidationFailed
from engine.request_context import RequestContext
from engine.services import Gmpflow
from tests.api_support import DEMO, Api, start_demo
from tests.conftest import ADMIN, principal
from tests.engine_support import request_of
from tests.session_support import browser_session
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
