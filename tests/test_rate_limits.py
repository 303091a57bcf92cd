"""Failed password attempts per client address are rate limited (Flask-Limiter) on every route that takes a
password without a token: beyond the limit, 429 ``rate_limited`` with ``Retry-After``, and the refused
request reaches nothing (no lockout count, no audit event, no token)."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from engine.config import Config
from engine.services import Gmpflow
from tests.api_support import PASSWORD, Api, body
from tests.hostile_support import snapshot
from webapp import create_app, ratelimits

LIMIT = 2  # failed attempts per minute in these tests


@pytest.fixture
def app(engine: Gmpflow) -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                       "GMPFLOW_PASSWORD_RATE_LIMIT": f"{LIMIT} per minute"}, engine=engine)


def failed_attempts(engine: Gmpflow, username: str) -> int:
    return next(u.failed_attempts for u in engine.list_users() if u.username == username)


def test_beyond_the_limit_even_the_right_password_answers_429_and_changes_nothing(api: Api,
                                                                                   engine: Gmpflow) -> None:
    api.ensure_user("olivia")
    for _ in range(LIMIT):
        wrong = api.post("/api/v1/tokens", json={"username": "olivia", "password": "wrong password"})
        assert (wrong.status_code, body(wrong)["code"]) == (401, "invalid_credentials")
    before = snapshot(engine.db)
    refused = api.post("/api/v1/tokens", json={"username": "olivia", "password": PASSWORD})
    assert (refused.status_code, body(refused)["code"]) == (429, "rate_limited")
    assert refused.headers["Retry-After"] == "60"
    assert snapshot(engine.db) == before
    assert failed_attempts(engine, "olivia") == LIMIT


def test_successful_sign_ins_do_not_count_toward_the_limit(api: Api) -> None:
    api.ensure_user("olivia")
    for _ in range(LIMIT + 2):  # e.g. a shift signing in at one terminal
        response = api.post("/api/v1/tokens", json={"username": "olivia", "password": PASSWORD})
        assert response.status_code == 200, response.json


def test_malformed_attempts_count_too(api: Api) -> None:
    for _ in range(LIMIT):
        assert api.post("/api/v1/tokens", json={"username": "olivia"}).status_code == 400
    assert body(api.post("/api/v1/tokens", json={"username": "x", "password": "y"}))["code"] == "rate_limited"


def test_the_password_change_route_is_limited_on_its_own(api: Api, engine: Gmpflow) -> None:
    api.ensure_user("olivia")
    attempt = {"username": "olivia", "old_password": "wrong password", "new_password": "a new passphrase"}
    for _ in range(LIMIT):
        assert api.post("/api/v1/password", json=attempt).status_code == 401
    assert body(api.post("/api/v1/password", json=attempt))["code"] == "rate_limited"
    assert api.post("/api/v1/tokens", json={"username": "olivia", "password": PASSWORD}).status_code == 200


def test_the_web_login_form_beyond_the_limit_shows_a_429_page(app: Flask, api: Api) -> None:
    api.ensure_user("olivia")
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"username": "olivia", "password": "wrong password", "csrf_token": csrf}
    for _ in range(LIMIT):
        assert browser.post("/login", data=form).status_code == 401
    refused = browser.post("/login", data={**form, "password": PASSWORD}, headers={"Accept": "text/html"})
    assert (refused.status_code, refused.mimetype) == (429, "text/html")
    assert "rate_limited" in refused.get_data(as_text=True)
    assert browser.get("/login").status_code == 200  # reading the form is not limited


def test_the_document_names_429_only_where_a_password_is_taken_without_a_token(api: Api) -> None:
    limited = {(method, path) for path, item in api.spec["paths"].items() for method, op in item.items()
               if method != "parameters" and "429" in op["responses"]}
    assert limited == {("post", "/api/v1/tokens"), ("post", "/api/v1/password")}
    assert api.spec["components"]["responses"]["Problem429"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_the_limit_and_the_counters_store_come_from_the_environment() -> None:
    assert ratelimits.settings(Config.from_environ({})) == {"GMPFLOW_PASSWORD_RATE_LIMIT": "100 per minute",
                                                            "RATELIMIT_STORAGE_URI": "memory://"}
    configured = Config.from_environ({"GMPFLOW_PASSWORD_RATE_LIMIT": "5 per hour",
                                      "GMPFLOW_RATE_LIMIT_STORAGE_URI": "redis://cache:6379"})
    assert ratelimits.settings(configured) == {"GMPFLOW_PASSWORD_RATE_LIMIT": "5 per hour",
                                     "RATELIMIT_STORAGE_URI": "redis://cache:6379"}


def test_failures_on_routes_that_take_no_password_do_not_count(api: Api) -> None:
    api.ensure_user("olivia")
    for _ in range(LIMIT + 2):
        assert body(api.get("/api/v1/tasks", token="1.forged"))["code"] == "token_invalid"
        assert body(api.get("/api/v1/tasks?state=bogus", as_="olivia"))["code"] == "bad_filter"
    for _ in range(LIMIT):
        wrong = api.post("/api/v1/tokens", json={"username": "olivia", "password": "wrong password"})
        assert body(wrong)["code"] == "invalid_credentials"
    assert body(api.post("/api/v1/tokens", json={"username": "olivia", "password": PASSWORD}))["code"] == \
        "rate_limited"
