"""Sessions and credentials (21 CFR 11.10(d), 11.300): a sign-in ends on the server, not only in the client.

Logout ends the browser session (a copied cookie replayed afterwards is refused); a password change or an
admin reset ends every token and session of the user; a password an admin chose must be changed before the
first token; tokens and sessions expire (``GMPFLOW_TOKEN_HOURS``); token checks run no argon2; an unknown
username costs the same argon2 verification as a known one; no admin locks himself or everybody out; the
CSV audit export cannot carry a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask
from flask.testing import FlaskClient

from engine import identity
from engine.audit import Actor
from engine.config import Config
from engine.errors import Conflict, DefinitionError, PermissionDenied
from engine.services import Gmpflow
from engine.store.models import AuthSession
from tests.api_support import PASSWORD, Api
from tests.conftest import ADMIN
from tests.engine_support import configure
from tests.hostile_support import snapshot
from webapp import create_app

COOKIE = "gmpflow_session"


class CountingHasher(PasswordHasher):
    """argon2 with the cheapest parameters, counting verifications (how a test sees that argon2 ran)."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's own name
        CountingHasher.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> type[CountingHasher]:
    cheapest = profiles.CHEAPEST
    monkeypatch.setattr(identity, "_hasher", CountingHasher(
        time_cost=cheapest.time_cost, memory_cost=cheapest.memory_cost, parallelism=cheapest.parallelism,
        hash_len=cheapest.hash_len, salt_len=cheapest.salt_len, type=cheapest.type))
    CountingHasher.verified = 0
    return CountingHasher


@pytest.fixture
def app(engine: Gmpflow, hasher: type[CountingHasher]) -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": "sessions", "SESSION_COOKIE_SECURE": False,
                       "WTF_CSRF_ENABLED": False}, engine=engine)


def web_login(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    assert (response.status_code, response.headers["Location"]) == (302, "/inbox"), response.data[:300]
    return client


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def replayed(app: Flask, cookie: str) -> FlaskClient:
    """A fresh browser that sends a copy of an old session cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie)
    return client


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/inbox")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def refused(response: Any, status: int, code: str) -> None:
    assert (response.status_code, response.get_json()["code"]) == (status, code), response.get_json()


# -- logout --------------------------------------------------------------------------------------------------
def test_logout_ends_the_session_on_the_server_so_a_replayed_cookie_is_refused(app: Flask,
                                                                               api: Api) -> None:
    api.ensure_user("olivia")
    browser = web_login(app, "olivia")
    copied = cookie_of(browser)
    assert signed_in(replayed(app, copied))  # the copy works while the session lives
    browser.post("/logout")
    assert not signed_in(browser)
    attacker = replayed(app, copied)
    response = attacker.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_logout_ends_only_that_session(app: Flask, api: Api) -> None:
    api.ensure_user("olivia")
    first, second = web_login(app, "olivia"), web_login(app, "olivia")
    token = api.token("olivia")
    first.post("/logout")
    assert signed_in(second)
    assert api.get("/api/v1/tasks", token=token).status_code == 200


def test_a_forged_session_cookie_without_a_server_side_session_is_refused(app: Flask, api: Api,
                                                                          engine: Gmpflow) -> None:
    api.ensure_user("ada")
    client = app.test_client()
    with client.session_transaction() as cookie:  # signed with the right key, but no session behind it
        cookie["user"], cookie["seen"] = "ada", engine.clock.now().timestamp()
    assert not signed_in(client)
    with client.session_transaction() as cookie:
        cookie["user"], cookie["sid"], cookie["seen"] = "ada", "1.guessed", engine.clock.now().timestamp()
    assert not signed_in(client)


def test_a_session_of_one_user_cannot_be_relabelled_as_another(app: Flask, api: Api) -> None:
    api.ensure_user("olivia")
    api.ensure_user("ada")
    browser = web_login(app, "olivia")
    with browser.session_transaction() as cookie:
        cookie["user"] = "ada"
    assert not signed_in(browser)


# -- password change and reset -------------------------------------------------------------------------------
def test_a_password_change_ends_every_token_and_session_of_the_user(app: Flask, api: Api,
                                                                    engine: Gmpflow) -> None:
    api.ensure_user("olivia")
    api.ensure_user("oscar")
    token, browser = api.token("olivia"), web_login(app, "olivia")
    copied = cookie_of(browser)
    others = api.token("oscar")
    response = api.post("/api/v1/password", json={"username": "olivia", "old_password": PASSWORD,
                                                  "new_password": "a brand new secret"})
    assert response.status_code == 204
    refused(api.get("/api/v1/tasks", token=token), 401, "token_revoked")
    assert not signed_in(browser) and not signed_in(replayed(app, copied))
    assert api.get("/api/v1/tasks", token=others).status_code == 200  # nobody else's
    fresh = api.post("/api/v1/tokens", json={"username": "olivia", "password": "a brand new secret"})
    assert api.get("/api/v1/tasks", token=fresh.get_json()["token"]).status_code == 200


def test_a_password_change_in_the_browser_ends_the_other_sessions_too(app: Flask,
                                                                      api: Api) -> None:
    api.ensure_user("olivia")
    elsewhere = web_login(app, "olivia")
    token = api.token("olivia")
    response = app.test_client().post("/account/password", data={
        "username": "olivia", "old_password": PASSWORD, "new_password": "a brand new secret",
        "repeat_password": "a brand new secret"})
    assert response.status_code == 302
    assert not signed_in(elsewhere)
    refused(api.get("/api/v1/tasks", token=token), 401, "token_revoked")


def test_an_admin_reset_ends_every_token_and_session_of_the_user(app: Flask, api: Api) -> None:
    api.ensure_user("olivia")
    token, browser = api.token("olivia"), web_login(app, "olivia")
    one_time = api.post("/api/v1/users/olivia/reset-password", as_="ada",
                        json={"reason": "suspected compromise"}).get_json()["one_time_password"]
    refused(api.get("/api/v1/tasks", token=token), 401, "token_revoked")
    assert not signed_in(browser)
    refused(api.post("/api/v1/tokens", json={"username": "olivia", "password": one_time}), 403,
            "password_change_required")


def test_a_failed_password_change_ends_nothing(app: Flask, api: Api) -> None:
    api.ensure_user("olivia")
    token = api.token("olivia")
    response = api.post("/api/v1/password", json={"username": "olivia", "old_password": "not my password",
                                                  "new_password": "a brand new secret"})
    refused(response, 401, "invalid_credentials")
    assert api.get("/api/v1/tasks", token=token).status_code == 200


# -- a password an admin chose ------------------------------------------------------------------------------
def test_a_user_an_admin_creates_must_change_the_password_before_the_first_token(app: Flask, api: Api,
                                                                                 engine: Gmpflow) -> None:
    api.ensure_user("ada")
    admin = web_login(app, "ada")
    response = admin.post("/admin/users", data={"username": "wanda", "full_name": "Wanda Weigher",
                                                "password": "chosen-by-ada", "roles": "operator"})
    assert response.status_code == 302
    [created] = [e for e in engine.audit_events(object_id="wanda") if e.action == "user.created"]
    assert created.after["must_change_password"] is True
    before = snapshot(engine.db)
    refused(api.post("/api/v1/tokens", json={"username": "wanda", "password": "chosen-by-ada"}), 403,
            "password_change_required")
    assert snapshot(engine.db) == before  # no token, no session, nothing counted
    login = app.test_client().post("/login", data={"username": "wanda", "password": "chosen-by-ada"})
    assert "/account/password" in login.headers["Location"]
    assert api.post("/api/v1/password", json={"username": "wanda", "old_password": "chosen-by-ada",
                                              "new_password": "wanda's own secret"}).status_code == 204
    token = api.post("/api/v1/tokens", json={"username": "wanda", "password": "wanda's own secret"})
    assert api.get("/api/v1/tasks", token=token.get_json()["token"]).status_code == 200


def test_a_token_whose_password_grew_too_old_answers_403_password_change_required(api: Api, clock: Any,
                                                                                  engine: Gmpflow) -> None:
    configure(engine, token_hours=48)
    api.ensure_user("olivia")
    clock.advance(days=179, hours=12)
    token = api.token("olivia")
    clock.advance(hours=13)
    refused(api.get("/api/v1/tasks", token=token), 403, "password_change_required")


# -- expiry -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hours,live_for", [("", 8), ("2", 2), ("0.5", 0.5)])
def test_tokens_and_browser_sessions_expire_after_the_configured_hours(app: Flask, api: Api, clock: Any,
                                                                       engine: Gmpflow, hours: str,
                                                                       live_for: float) -> None:
    configure(engine, token_hours=Config.from_environ({"GMPFLOW_TOKEN_HOURS": hours}).token_hours)
    api.ensure_user("olivia")
    token, browser = api.token("olivia"), web_login(app, "olivia")
    for _ in range(int(live_for * 6) - 1):  # active every ten minutes: the idle timeout never strikes
        clock.advance(minutes=10)
        assert signed_in(browser)
    assert api.get("/api/v1/tasks", token=token).status_code == 200
    clock.advance(minutes=10)
    refused(api.get("/api/v1/tasks", token=token), 401, "token_expired")
    assert not signed_in(browser)


@pytest.mark.parametrize("value", ["0", "-1", "eight", "1e9"])
def test_a_bad_token_lifetime_setting_is_refused_when_the_configuration_is_read(value: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        Config.from_environ({"GMPFLOW_TOKEN_HOURS": value})
    assert refused.value.code == "bad_setting" and "GMPFLOW_TOKEN_HOURS" in refused.value.message


# -- what the server keeps, and what a request costs ------------------------------------------------------
def test_the_server_keeps_only_a_keyed_hash_of_a_token(api: Api, engine: Gmpflow) -> None:
    token = api.token("olivia")
    row_id, secret = token.split(".", 1)
    with engine.db.read() as session:
        row = session.get(AuthSession, int(row_id))
        assert row is not None and row.kind == "api"
        assert secret not in row.secret_sha256 and len(row.secret_sha256) == 64


def test_a_token_check_runs_no_argon2(api: Api, hasher: type[CountingHasher]) -> None:
    token = api.token("olivia")
    hasher.verified = 0
    for _ in range(3):
        assert api.get("/api/v1/tasks", token=token).status_code == 200
    assert hasher.verified == 0


def test_an_unknown_username_costs_the_same_argon2_verification_as_a_wrong_password(
        api: Api, hasher: type[CountingHasher]) -> None:
    api.ensure_user("olivia")
    hasher.verified = 0
    refused(api.post("/api/v1/tokens", json={"username": "olivia", "password": "wrong one"}), 401,
            "invalid_credentials")
    known = hasher.verified
    hasher.verified = 0
    refused(api.post("/api/v1/tokens", json={"username": "nobody-here", "password": "wrong one"}), 401,
            "invalid_credentials")
    assert known == hasher.verified == 1


# -- no admin locks himself or everybody out -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/users/ada/deactivate", "/api/v1/users/ada/roles/admin/remove"])
def test_an_admin_cannot_deactivate_himself_or_drop_his_own_admin_role(api: Api, engine: Gmpflow,
                                                                       path: str) -> None:
    api.token("ada")
    before = snapshot(engine.db)
    refused(api.post(path, as_="ada", json={"reason": "leaving"}), 403, "not_permitted")
    assert snapshot(engine.db) == before


def test_another_admin_may_remove_an_admins_role(api: Api, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "adam", "Adam Admin", PASSWORD, ["admin"])
    api.ensure_user("ada")
    response = api.post("/api/v1/users/adam/roles/admin/remove", as_="ada", json={"reason": "moved"})
    assert response.status_code == 200 and response.get_json()["roles"] == []


@pytest.mark.parametrize("change", ["deactivate", "remove_admin"])
def test_the_last_active_admin_stays_whoever_asks(api: Api, engine: Gmpflow, change: str) -> None:
    api.ensure_user("ada")
    operator = Actor("cli:root", "root (command line)")  # not an admin account: the guard still holds
    before = snapshot(engine.db)
    with pytest.raises(Conflict) as refusal:
        if change == "deactivate":
            engine.set_user_active(operator, "ada", False, "tidying up")
        else:
            engine.remove_role(operator, "ada", "admin", "tidying up")
    assert refusal.value.code == "last_admin"
    assert snapshot(engine.db) == before


def test_an_inactive_admin_does_not_count_as_the_one_that_stays(api: Api, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "adam", "Adam Admin", PASSWORD, ["admin"])
    api.ensure_user("ada")
    engine.set_user_active(ADMIN, "adam", False, "left")
    with pytest.raises(Conflict):
        engine.remove_role(Actor("cli:root", "root"), "ada", "admin", "tidying up")
    with pytest.raises(PermissionDenied):
        engine.remove_role(Actor("ada", "Ada"), "ada", "admin", "tidying up")


# -- the CSV export ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_csv_audit_export_neutralises_cells_that_could_start_a_formula(
        app: Flask, api: Api, engine: Gmpflow, start: str) -> None:
    payload = f"{start}HYPERLINK(\"http://evil.example\",\"x\")"
    engine.add_user(ADMIN, "mallory", payload, PASSWORD, ["operator"])
    engine.set_user_active(ADMIN, "mallory", False, payload)
    api.ensure_user("ada")
    text = web_login(app, "ada").get("/admin/audit/export.csv?object_id=mallory").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {r["object_label"] for r in rows} == {"'" + payload}  # the printed name, as typed
    stored = payload.strip()  # a reason is stored stripped: tab and CR are gone, '=' and the rest stay
    assert rows[-1]["reason"] == (stored if stored[0].isalpha() else "'" + stored)
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values()), row
