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
RECORD_READERS = {"qa", "supervisor", "process_owner", "admin"}  # engine.access: every instance and record
EXPECTED: dict[str, str | set[str]] = {
    "api.openapi_document": PUBLIC, "api.issue": PUBLIC, "api.change_password": PUBLIC,
    "api.list_definitions": SIGNED_IN, "api.start_instance": SIGNED_IN,
    "api.list_instances": SIGNED_IN, "api.get_instance": SIGNED_IN, "api.get_instance_status": SIGNED_IN,
    "api.instance_record": SIGNED_IN,
    "api.instance_record_html": SIGNED_IN, "api.instance_record_pdf": SIGNED_IN,
    "api.batch_record": SIGNED_IN, "api.batch_record_html": SIGNED_IN, "api.batch_record_pdf": SIGNED_IN,
    "api.suspend_instance": {"admin"}, "api.resume_instance": {"admin"}, "api.terminate_instance": {"admin"},
    "api.list_masterdata_types": SIGNED_IN, "api.show_masterdata_type": SIGNED_IN,
    "api.list_masterdata_records": SIGNED_IN, "api.show_masterdata_record": SIGNED_IN,
    "api.show_masterdata_version": SIGNED_IN, "api.effective_masterdata_version": SIGNED_IN,
    "api.diff_masterdata_versions": SIGNED_IN,
    "api.create_masterdata_record": STEWARD, "api.new_masterdata_draft": STEWARD,
    "api.update_masterdata_draft": STEWARD, "api.submit_masterdata_version": STEWARD,
    "api.import_masterdata": STEWARD,
    "api.send_message": SIGNED_IN, "api.list_incidents": RECORD_READERS, "api.retry_incident": {"admin"},
    "api.list_audit": {"admin", "qa"}, "api.verify_audit": {"admin", "qa"}, "api.list_signatures": SIGNED_IN,
    "api.list_tasks": SIGNED_IN, "api.get_task": SIGNED_IN, "api.get_task_form": SIGNED_IN,
    "api.claim_task": SIGNED_IN,
    "api.unclaim_task": SIGNED_IN, "api.complete_task": SIGNED_IN,
    "api.list_users": {"admin"}, "api.reset_password": {"admin"}, "api.unlock_user": {"admin"},
    "api.deactivate_user": {"admin"}, "api.activate_user": {"admin"}, "api.grant_role": {"admin"},
    "api.remove_role": {"admin"}, "api.list_roles": SIGNED_IN, "api.add_role": {"admin"},
    # gmp.lots.CREATORS receive lots (refusal 403 not_permitted from the engine, audited); any user reads
    "api.create_lot": SIGNED_IN, "api.list_lots": SIGNED_IN, "api.get_lot": SIGNED_IN,
    # read like records (engine.access): record readers, and for a genealogy the batches' participants
    "api.get_genealogy": SIGNED_IN, "api.equipment_logbook": SIGNED_IN,
}
SAMPLE_ARGS = {"key": "demo_approval", "instance_id": 1, "task_id": 1, "incident_id": 1,
               "type_name": "material", "number": 1, "v1": 1, "v2": 2, "username": "nobody", "role": "qa",
               "batch_id": "B-1", "lot_id": "LOT-1", "equipment_id": "EQ-1"}
# allowed callers may still be refused the sample object or its state, or send a body the route rejects
ALLOWED = {200, 201, 400, 404, 409, 413, 415, 422}  # 422: a body the rules refuse (POST /lots)
REFUSALS = {"not_permitted", "role_required"}  # the model's lane, or engine.access for reads


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
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
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
                    assert status in ALLOWED or (status == 403 and body.get("code") in REFUSALS), where
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


# -- reads need a reason (engine.access): records, signatures and the audit trail ---------------------------
# olivia started both instances and completed the request of the first; oscar (operator) takes no part in the
# first, and holds the open request task of the second; paula (planner) takes part in neither.
FIRST, SECOND = "first", "second"
READS = [("GET", "/api/v1/instances/{first}"), ("GET", "/api/v1/instances/{first}/status"),
         ("GET", "/api/v1/instances/{first}/record"),
         ("GET", "/api/v1/instances/{first}/record.html"), ("GET", "/api/v1/instances/{first}/record.pdf"),
         ("GET", "/api/v1/signatures?instance_id={first}")]
READERS = {"olivia": 200, "oscar": (403, "not_permitted"), "paula": (403, "not_permitted"), "sam": 200,
           "quinn": 200, "pete": 200, "ada": 200}
GLOBAL_READS = {  # path: {caller: expected}; a refusal is (status, code)
    "/api/v1/signatures": {"olivia": (403, "not_permitted"), "oscar": (403, "not_permitted"),
                           "paula": (403, "not_permitted"), "sam": 200, "quinn": 200, "pete": 200,
                           "ada": 200},
    "/api/v1/audit": {"olivia": (403, "role_required"), "sam": (403, "role_required"),
                      "pete": (403, "role_required"), "quinn": 200, "ada": 200},
    "/api/v1/audit/verify": {"olivia": (403, "role_required"), "sam": (403, "role_required"), "quinn": 200},
    "/api/v1/incidents": {"olivia": (403, "role_required"), "paula": (403, "role_required"), "sam": 200,
                          "pete": 200},
}


@pytest.fixture
def taking_part(api: Any, engine: Gmpflow) -> dict[str, int]:
    """Two demo approvals started by olivia: the first waits for the supervisor's review, the second for
    its request (an operator task)."""
    from tests.api_support import start_demo

    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    engine.add_user(ADMIN, "pete", "Pete Owner", "correct horse battery", ["process_owner"])
    api._created.add("pete")
    first, second = start_demo(api, "REQ-1")["id"], start_demo(api, "REQ-2")["id"]
    [task] = api.get(f"/api/v1/tasks?instance_id={first}", as_="olivia").get_json()
    done = api.post(f"/api/v1/tasks/{task['id']}/complete", as_="olivia",
                    json={"data": {"quantity": 5, "comment": "gloves"}})
    assert done.status_code == 200, done.get_json()
    for who in ("oscar", "paula", "sam", "quinn", "pete", "ada"):
        api.token(who)  # every token issued before the refusals are checked against a snapshot
    return {FIRST: first, SECOND: second}


def _answers(response: Any, expected: int | tuple[int, str], where: str) -> None:
    if isinstance(expected, int):
        assert response.status_code == expected, (where, response.get_json(silent=True))
    else:
        body = response.get_json(silent=True) or {}
        assert (response.status_code, body.get("code")) == expected, where


@pytest.mark.parametrize("method,path", READS)
def test_an_instances_record_and_signatures_are_for_record_readers_and_its_participants(
        api: Any, engine: Gmpflow, taking_part: dict[str, int], method: str, path: str) -> None:
    from tests.hostile_support import snapshot

    url = path.format(**taking_part)
    for who, expected in READERS.items():
        before = snapshot(engine.db)
        _answers(api.call(method, url, as_=who), expected, f"{who} {url}")
        assert snapshot(engine.db) == before


@pytest.mark.parametrize("path", list(GLOBAL_READS))
def test_global_reads_are_for_their_roles_only(api: Any, engine: Gmpflow, taking_part: dict[str, int],
                                               path: str) -> None:
    from tests.hostile_support import snapshot

    for who, expected in GLOBAL_READS[path].items():
        before = snapshot(engine.db)
        _answers(api.get(path, as_=who), expected, f"{who} {path}")
        assert snapshot(engine.db) == before


def test_an_operator_holding_an_open_task_of_an_instance_takes_part_in_it(api: Any,
                                                                         taking_part: dict[str, int]) -> None:
    second = taking_part[SECOND]
    assert api.get(f"/api/v1/instances/{second}", as_="oscar").status_code == 200
    assert api.get(f"/api/v1/instances/{second}/record", as_="oscar").status_code == 200
    assert api.get(f"/api/v1/signatures?instance_id={second}", as_="oscar").status_code == 200
    refused = api.get(f"/api/v1/instances/{second}", as_="paula")
    assert (refused.status_code, refused.get_json()["code"]) == (403, "not_permitted")


@pytest.mark.parametrize("who,sees", [("olivia", {FIRST, SECOND}), ("oscar", {SECOND}), ("paula", set()),
                                      ("sam", {FIRST, SECOND}), ("pete", {FIRST, SECOND})])
def test_the_instance_list_shows_only_the_instances_a_caller_may_read(api: Any, taking_part: dict[str, int],
                                                                      who: str, sees: set[str]) -> None:
    page = api.get("/api/v1/instances", as_=who).get_json()
    assert {i["id"] for i in page["items"]} == {taking_part[k] for k in sees}
    assert page["total"] == len(sees)
