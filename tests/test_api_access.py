"""The REST API's access matrix, from the app's URL map.

``EXPECTED`` names who may call every ``/api/v1`` route: ``PUBLIC`` (no token), ``SIGNED_IN`` (any valid
bearer token; the engine may still refuse an object, e.g. a task outside the caller's lanes), or the set of
roles of ``require_roles``. A route added without an expectation fails
``test_every_api_route_has_an_expectation``; the walk calls each route and method anonymously and with a
token for each default role: anonymous callers get 401 ``unauthenticated`` on every non-public route,
callers without the role 403 ``role_required``, and nobody a 5xx.
"""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask

from engine import identity
from engine.identity import DEFAULT_ROLES
from engine.services import Gmpflow
from tests.conftest import ADMIN, ROOT
from webapp import create_app
from webapp.api.openapi import api_rules

PUBLIC, SIGNED_IN = "public", "signed_in"
PASSWORD = "correct horse battery"
STEWARD = {"data_steward"}
BATCH_REVIEWERS = {"qa", "admin", "supervisor"}
EXPECTED: dict[str, str | set[str]] = {
    "api.openapi_document": PUBLIC, "api.issue": PUBLIC, "api.change_password": PUBLIC,
    "api.list_definitions": SIGNED_IN, "api.start_instance": SIGNED_IN,
    "api.list_instances": SIGNED_IN, "api.get_instance": SIGNED_IN, "api.instance_record": SIGNED_IN,
    "api.instance_record_html": SIGNED_IN, "api.instance_record_pdf": SIGNED_IN,
    "api.batch_record": BATCH_REVIEWERS, "api.batch_record_html": BATCH_REVIEWERS,
    "api.batch_record_pdf": BATCH_REVIEWERS,
    "api.suspend_instance": {"admin"}, "api.resume_instance": {"admin"}, "api.terminate_instance": {"admin"},
    "api.list_masterdata_types": SIGNED_IN, "api.show_masterdata_type": SIGNED_IN,
    "api.list_masterdata_records": SIGNED_IN, "api.show_masterdata_record": SIGNED_IN,
    "api.show_masterdata_version": SIGNED_IN, "api.effective_masterdata_version": SIGNED_IN,
    "api.diff_masterdata_versions": SIGNED_IN,
    "api.create_masterdata_record": STEWARD, "api.new_masterdata_draft": STEWARD,
    "api.update_masterdata_draft": STEWARD, "api.submit_masterdata_version": STEWARD,
    "api.import_masterdata": STEWARD,
    "api.send_message": SIGNED_IN, "api.list_incidents": SIGNED_IN, "api.retry_incident": {"admin"},
    "api.list_audit": {"admin", "qa"}, "api.verify_audit": {"admin", "qa"}, "api.list_signatures": SIGNED_IN,
    "api.list_tasks": SIGNED_IN, "api.get_task": SIGNED_IN, "api.claim_task": SIGNED_IN,
    "api.unclaim_task": SIGNED_IN, "api.complete_task": SIGNED_IN,
    "api.list_users": {"admin"}, "api.reset_password": {"admin"}, "api.unlock_user": {"admin"},
    "api.deactivate_user": {"admin"}, "api.activate_user": {"admin"}, "api.grant_role": {"admin"},
    "api.remove_role": {"admin"}, "api.list_roles": SIGNED_IN, "api.add_role": {"admin"},
}
SAMPLE_ARGS = {"key": "demo_approval", "instance_id": 1, "task_id": 1, "incident_id": 1,
               "type_name": "material", "number": 1, "v1": 1, "v2": 2, "username": "nobody", "role": "qa",
               "batch_id": "B-1"}
# allowed callers may still be refused the sample object or its state, or send a body the route rejects
ALLOWED = {200, 201, 400, 404, 409, 413, 415}


@pytest.fixture
def app(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    return create_app({"TESTING": True, "SECRET_KEY": "api-access-walk"}, engine=engine)


def declared(app: Flask, endpoint: str) -> str | set[str]:
    view = app.view_functions[endpoint]
    if getattr(view, "__openapi__", {}).get("security") == []:
        return PUBLIC
    roles = getattr(view, "required_roles", None)
    return set(roles) if roles else SIGNED_IN


def test_every_api_route_has_an_expectation(app: Flask) -> None:
    endpoints = {r.endpoint for r in api_rules(app)}
    assert endpoints - EXPECTED.keys() == set(), "add the new API route's access to EXPECTED"
    assert EXPECTED.keys() - endpoints == set(), "EXPECTED names an API route that no longer exists"
    for endpoint, expected in EXPECTED.items():
        assert declared(app, endpoint) == expected, endpoint


def test_every_api_route_answers_anonymous_callers_and_each_role_as_expected(app: Flask,
                                                                             engine: Gmpflow) -> None:
    engine.deploy(ADMIN, [ROOT / "processes" / "demo_approval"])
    client = app.test_client()
    headers: dict[str | None, dict[str, str]] = {None: {}}
    for role in DEFAULT_ROLES:
        engine.add_user(ADMIN, f"api_{role}", f"Caller {role}", PASSWORD, [role])
        response = client.post("/api/v1/tokens", json={"username": f"api_{role}", "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        headers[role] = {"Authorization": f"Bearer {response.get_json()['token']}"}
    adapter = app.url_map.bind("localhost")
    walked = 0
    for rule in api_rules(app):
        url = adapter.build(rule.endpoint, {a: SAMPLE_ARGS[a] for a in rule.arguments})
        expected = EXPECTED[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for role, auth in headers.items():
                kwargs: dict[str, Any] = {"headers": auth}
                if method in ("POST", "PUT"):
                    kwargs["json"] = {}
                response = client.open(url, method=method, **kwargs)
                status, payload = response.status_code, response.get_json(silent=True)
                body = payload if isinstance(payload, dict) else {}
                where = f"{method} {url} as {role or 'anonymous'}: {status} {body.get('code')}"
                walked += 1
                assert status < 500, where
                if expected == PUBLIC:
                    assert status not in (401, 403), where
                elif role is None:
                    assert (status, body.get("code")) == (401, "unauthenticated"), where
                    assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
                elif expected == SIGNED_IN:  # the engine may refuse the object (a task of another lane: 403)
                    assert status in ALLOWED | {403}, where
                elif role in expected:
                    assert status in ALLOWED or (status == 403 and body.get("code") != "role_required"), where
                else:
                    assert (status, body.get("code")) == (403, "role_required"), where
    assert walked == sum(len((r.methods or set()) - {"HEAD", "OPTIONS"})
                         for r in api_rules(app)) * len(headers)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic b2xpdmlhOnNlY3JldA==", "Bearer ", "bearer"])
def test_a_bad_authorization_header_is_401_on_every_non_public_api_route(app: Flask, header: str) -> None:
    client = app.test_client()
    adapter = app.url_map.bind("localhost")
    for rule in api_rules(app):
        if EXPECTED[rule.endpoint] == PUBLIC:
            continue
        url = adapter.build(rule.endpoint, {a: SAMPLE_ARGS[a] for a in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, headers={"Authorization": header})
            assert response.status_code == 401, f"{method} {url}: {response.status_code}"
            assert response.get_json()["code"] in ("unauthenticated", "token_invalid"), (method, url)
