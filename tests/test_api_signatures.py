"""Signatures, user administration and inspector copies through the REST API."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles

from engine import identity
from tests.api_support import PASSWORD, Api, open_task
from tests.conftest import FIXTURES
from tests.test_records import facts, html_text, pdf_text, squeeze


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def release(deploy):  # type: ignore[no-untyped-def]
    return deploy(FIXTURES / "signed_release.bpmn")


def signature(username: str, meaning: str, password: str = PASSWORD) -> dict[str, str]:
    return {"username": username, "password": password, "meaning": meaning}


def complete(api: Api, task_id: int, as_: str, data=None, sign=None):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/tasks/{task_id}/complete", as_=as_,
                    json={"data": data or {}, "signature": sign})


def to_approval(api: Api) -> int:
    instance = api.post("/api/v1/process-definitions/signed_release/instances", as_="olivia",
                        json={"business_key": "B-API"}).json
    response = complete(api, open_task(api, instance["id"], "olivia")["id"], "olivia", {"quantity_kg": 4.2})
    assert response.status_code == 200, response.json
    response = complete(api, open_task(api, instance["id"], "oscar")["id"], "oscar", {"ok": True},
                        signature("oscar", "Verified"))
    assert response.status_code == 200, response.json
    return int(instance["id"])


def test_a_signed_completion_answers_the_task_with_the_signature_manifestation(api, release):
    instance_id = to_approval(api)
    task = open_task(api, instance_id, "quinn")
    response = complete(api, task["id"], "quinn", {"decision": "release"}, signature("quinn", "Approved"))
    assert response.status_code == 200, response.json
    [shown] = response.json["signatures"]
    assert (shown["printed_name"], shown["meaning"]) == ("Quinn", "Approved")
    assert shown["signed_at"].endswith("+00:00")
    listed = api.get(f"/api/v1/signatures?instance_id={instance_id}", as_="ada").json
    assert [(s["username"], s["meaning"]) for s in listed] == [("oscar", "Verified"), ("quinn", "Approved")]
    detail = api.get(f"/api/v1/instances/{instance_id}", as_="ada").json
    assert len(detail["signatures"]) == 2
    assert [len(t["signatures"]) for t in detail["tasks"]] == [0, 1, 1]
    report = api.get("/api/v1/audit/verify", as_="ada").json
    assert report["ok"] is True


@pytest.mark.parametrize("sign, code", [
    (None, "signature_required"),
    (signature("quinn", "Approved", "wrong password"), "signature_password_invalid"),
    (signature("oscar", "Approved"), "signature_user_mismatch"),
    (signature("quinn", "Released"), "signature_meaning_not_allowed"),
], ids=["missing", "wrong-password", "other-user", "foreign-meaning"])
def test_a_refused_signature_answers_403_with_its_code_and_the_task_stays_open(api, release, sign, code):
    instance_id = to_approval(api)
    task = open_task(api, instance_id, "quinn")
    response = complete(api, task["id"], "quinn", {}, sign)
    assert (response.status_code, response.json["code"]) == (403, code)
    assert api.get(f"/api/v1/tasks/{task['id']}", as_="quinn").json["state"] == "open"


def test_lockout_after_five_failed_signings_is_visible_to_admins_only(api, release):
    instance_id = to_approval(api)
    task = open_task(api, instance_id, "quinn")
    api.token("quinn")
    for _ in range(5):
        complete(api, task["id"], "quinn", {}, signature("quinn", "Approved", "guess"))
    users = {u["username"]: u for u in api.get("/api/v1/users", as_="ada").json}
    assert (users["quinn"]["locked"], users["quinn"]["failed_attempts"]) == (True, 5)
    assert api.get("/api/v1/users", as_="olivia").status_code == 403
    response = api.post("/api/v1/users/quinn/unlock", as_="ada", json={"reason": "identity confirmed"})
    assert (response.status_code, response.json["locked"]) == (200, False)


def test_an_admin_reset_gives_a_one_time_password_to_change_before_login(api, release):
    api.ensure_user("quinn")
    response = api.post("/api/v1/users/quinn/reset-password", as_="ada", json={"reason": ""})
    assert (response.status_code, list(response.json["errors"])) == (400, ["reason"])
    one_time = api.post("/api/v1/users/quinn/reset-password", as_="ada",
                        json={"reason": "forgot it"}).json["one_time_password"]
    response = api.post("/api/v1/tokens", json={"username": "quinn", "password": one_time})
    assert (response.status_code, response.json["code"]) == (403, "password_change_required")
    response = api.post("/api/v1/password", json={"username": "quinn", "old_password": one_time,
                                                  "new_password": "quinn's own secret"})
    assert response.status_code == 204
    assert api.post("/api/v1/tokens",
                    json={"username": "quinn", "password": "quinn's own secret"}).status_code == 200


def test_roles_are_granted_and_removed_by_admins_with_a_reason(api, release):
    api.ensure_user("paula")
    response = api.post("/api/v1/users/paula/roles", as_="ada", json={"role": "qa", "reason": "trained"})
    assert response.json["roles"] == ["planner", "qa"]
    response = api.post("/api/v1/users/paula/roles/qa/remove", as_="ada", json={"reason": "moved"})
    assert response.json["roles"] == ["planner"]
    assert api.post("/api/v1/users/paula/deactivate", as_="ada",
                    json={"reason": "left"}).json["active"] is False
    assert api.post("/api/v1/users/paula/roles", as_="olivia",
                    json={"role": "qa", "reason": "x"}).status_code == 403


def test_the_api_copies_of_a_record_carry_the_same_facts(api, release):
    instance_id = to_approval(api)
    complete(api, open_task(api, instance_id, "quinn")["id"], "quinn", {"decision": "release"},
             signature("quinn", "Approved"))
    record = api.get(f"/api/v1/instances/{instance_id}/record", as_="quinn").json
    html = api.get(f"/api/v1/instances/{instance_id}/record.html", as_="quinn")
    pdf = api.get(f"/api/v1/instances/{instance_id}/record.pdf", as_="quinn")
    assert (html.mimetype, pdf.mimetype) == ("text/html", "application/pdf")
    html_facts, pdf_facts = squeeze(html_text(html.get_data(as_text=True))), squeeze(pdf_text(pdf.data))
    assert len(record["signatures"]) == 2
    for fact in facts(record):
        assert squeeze(fact) in html_facts and squeeze(fact) in pdf_facts, fact


def test_a_token_stops_working_once_an_admin_resets_the_password(api, release):
    token = api.token("quinn")
    assert api.get("/api/v1/tasks", token=token).status_code == 200
    api.post("/api/v1/users/quinn/reset-password", as_="ada", json={"reason": "suspected compromise"})
    response = api.get("/api/v1/tasks", token=token)
    assert (response.status_code, response.json["code"]) == (401, "token_revoked")
