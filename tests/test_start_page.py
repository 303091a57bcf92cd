"""The start page ``/start`` (issue 15, point 1): the processes the signed-in user may start, each with its
start form, and starting one from the browser.

What the page lists is the model's answer (``engine.authority``'s start gate: ``start.roles``, else the
start event's lane, else ``admin``); a start goes through ``Gmpflow.start_instance`` with the principal, so
the same checks as the API run: a refused start is 403 ``not_permitted`` with nothing stored but the
refusal's audit event, an undeclared field is the form's error with nothing stored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask
from flask.testing import FlaskClient

from engine import bootstrap, identity
from engine.clock import FrozenClock
from engine.operations import configured_registry
from engine.services import Gmpflow
from engine.store import Database
from tests.authority_support import audit_tail, last_seq, rows, waiting_model
from tests.conftest import ADMIN, FIXTURES
from tests.session_support import browser_session
from webapp import create_app

SESSION_TABLES = ("auth_session",)  # each request notes the session's last use


@pytest.fixture
def engine(database: Database, clock: FrozenClock) -> Gmpflow:
    """The shipped processes need the shipped connectors."""
    gmp = Gmpflow(database, clock, change_control="off", registry=configured_registry())
    gmp.record_start()
    return gmp


@pytest.fixture
def app(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    bootstrap.load_bundled_models(engine, ADMIN)
    bootstrap.add_demo_users(engine, ADMIN)
    return create_app({"SECRET_KEY": "start-page", "SESSION_COOKIE_SECURE": False}, engine=engine)


def client_of(app: Flask, engine: Gmpflow, username: str) -> FlaskClient:
    client = app.test_client()
    browser_session(cast(Flask, client.application), client, engine, username)
    return client


def token(client: FlaskClient) -> str:
    page = client.get("/start").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def start(client: FlaskClient, key: str, data: dict[str, Any], business_key: str = "") -> Any:
    return client.post(f"/start/{key}", data={"csrf_token": token(client), "data": json.dumps(data),
                                              "business_key": business_key})


def stored(engine: Gmpflow) -> dict[str, Any]:
    return {k: v for k, v in rows(engine.db).items() if k not in SESSION_TABLES}


def startable(page: str) -> set[str]:
    return set(re.findall(r'data-start-form data-key="([^"]+)"', page))


@pytest.mark.parametrize(("username", "sees", "does_not_see"), [
    ("olivia", {"demo_approval", "sop_correction"}, {"change_control", "batch_reopen"}),
    ("pete", {"change_control"}, {"demo_approval", "sop_correction"}),
    ("quinn", {"batch_reopen"}, {"demo_approval", "change_control"}),  # by the start event's lane (qa)
    ("ada", set(), {"demo_approval", "change_control", "batch_reopen"}),  # admin: none names it
])
def test_the_start_page_lists_what_the_users_roles_may_start(app: Flask, engine: Gmpflow, username: str,
                                                            sees: set[str], does_not_see: set[str]) -> None:
    page = client_of(app, engine, username).get("/start")
    assert page.status_code == 200
    listed = startable(page.get_data(as_text=True))
    assert sees <= listed and not does_not_see & listed


def test_message_timer_and_engine_started_processes_say_who_starts_them(app: Flask,
                                                                       engine: Gmpflow) -> None:
    engine.deploy(ADMIN, [FIXTURES / "timer_start_cycle.bpmn"])
    page = client_of(app, engine, "olivia").get("/start").get_data(as_text=True)
    others = page[page.index('id="started-by-others"'):]
    assert re.search(r"order_release</code></td>\s*<td>On the message <code>[^<]+</code>, sent by "
                     r"integration, planner", others)
    assert re.search(r"sop_execution</code></td>\s*<td>Only by the engine", others)
    assert re.search(r"poll_erp</code></td>\s*<td>By a timer", others)
    assert "order_release" not in startable(page)


def test_a_start_form_is_rendered_by_form_js_with_its_fields(app: Flask, engine: Gmpflow) -> None:
    page = client_of(app, engine, "pete").get("/start").get_data(as_text=True)
    section = page[page.index('id="start-change_control"'):]
    config = json.loads(re.search(r'class="start-config">(.*?)</script>', section, re.S).group(1))  # type: ignore[union-attr]
    assert config["form"]["id"] == "change_control_start"
    assert "dist/form.js" in page and "js/start.js" in page


def test_a_successful_start_lands_on_the_starters_first_task(app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "olivia")
    answer = start(client, "demo_approval", {}, "REQ-7")
    [task] = [r["task"] for r in engine.inbox(engine.principal("olivia")) if r["business_key"] == "REQ-7"]
    assert (answer.status_code, answer.headers["Location"]) == (302, f"/tasks/{task.id}")
    [instance] = engine.list_instances(business_key="REQ-7")[0]
    assert instance.initiator == "olivia" and instance.process_key == "demo_approval"


def test_a_process_owner_starts_change_control_from_its_start_form_and_lands_on_the_request(
        app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "pete")
    answer = start(client, "change_control", {"subject_kind": "deployment", "reason": "new step"}, "CC-1")
    [task] = [r["task"] for r in engine.inbox(engine.principal("pete")) if r["business_key"] == "CC-1"]
    assert task.element_id == "request_deployment"
    assert (answer.status_code, answer.headers["Location"]) == (302, f"/tasks/{task.id}")


@pytest.mark.parametrize(("username", "role", "lands_on"), [
    ("quinn", "qa", "/instances/{id}"),  # qa's roles open the instance page
    ("olivia", "operator", "/start"),     # an operator's do not: back, told which instance started
])
def test_a_start_without_a_task_for_the_starter_lands_on_the_instance_or_back_on_the_start_page(
        app: Flask, engine: Gmpflow, tmp_path: Path, username: str, role: str, lands_on: str) -> None:
    (tmp_path / "gate.bpmn").write_text(waiting_model("gate", start_roles=role))  # waits for a message
    engine.deploy(ADMIN, [tmp_path])
    client = client_of(app, engine, username)
    answer = start(client, "gate", {}, "G-1")
    [instance] = engine.list_instances(business_key="G-1")[0]
    assert (answer.status_code, answer.headers["Location"]) == (302, lands_on.format(id=instance.id))
    assert f"Instance #{instance.id}" in client.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_start_with_an_undeclared_field_answers_the_form_error_and_stores_nothing(
        app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "pete")
    page_token = token(client)
    before, seq = stored(engine), last_seq(engine.db)
    answer = client.post("/start/change_control", data={
        "csrf_token": page_token, "business_key": "CC-2",
        "data": json.dumps({"subject_kind": "deployment", "reason": "r", "approved": True})})
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert 'data-field="approved"' in text and "not declared" in text
    assert 'id="form-error-change_control"' in text
    assert stored(engine) == before and audit_tail(engine.db, seq) == []


def test_a_start_form_value_the_form_refuses_is_shown_at_the_field(app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "pete")
    page_token = token(client)
    before = stored(engine)
    answer = client.post("/start/change_control", data={"csrf_token": page_token, "business_key": "CC-3",
                                                         "data": json.dumps({"reason": "no kind"})})
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    found = re.search(r'id="start-change_control".*?class="start-config">(.*?)</script>', text, re.S)
    config = json.loads(found.group(1))  # type: ignore[union-attr]
    assert "subject_kind" in config["errors"] and config["data"] == {"reason": "no kind"}
    assert stored(engine) == before


def test_an_operator_cannot_start_a_process_their_roles_do_not_start(app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "olivia")
    page_token = token(client)
    before, seq = stored(engine), last_seq(engine.db)
    answer = client.post("/start/change_control", data={"csrf_token": page_token, "business_key": "CC-4",
                                                         "data": json.dumps({"subject_kind": "deployment"})})
    assert answer.status_code == 403 and answer.json["code"] == "not_permitted"  # type: ignore[index]
    assert stored(engine) == before
    refusals = [(e.action, e.actor_id) for e in audit_tail(engine.db, seq)]
    assert refusals == [("instance.start_refused", "olivia")]


def test_a_start_without_the_csrf_token_is_refused(app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "olivia")
    before = stored(engine)
    answer = client.post("/start/demo_approval", data={"data": "{}", "business_key": "REQ-8"})
    assert answer.status_code == 400 and stored(engine) == before


def test_an_unknown_process_is_not_found(app: Flask, engine: Gmpflow) -> None:
    client = client_of(app, engine, "olivia")
    assert start(client, "no_such_process", {}).status_code == 404
