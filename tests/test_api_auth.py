"""Bearer tokens and the shape of every error answer."""

from __future__ import annotations

from tests.api_support import PASSWORD, Api
from tests.engine_support import configure


def test_a_correct_password_gets_a_token_valid_for_eight_hours(api, clock):
    api.ensure_user("olivia")
    response = api.post("/api/v1/tokens", json={"username": "olivia", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json["expires_at"].startswith("2026-01-05T16:00:00")
    assert api.get("/api/v1/tasks", token=response.json["token"]).status_code == 200


def test_a_wrong_password_answers_401_and_counts_toward_lockout(api, engine):
    api.ensure_user("olivia")
    response = api.post("/api/v1/tokens", json={"username": "olivia", "password": "wrong password"})
    assert response.status_code == 401
    assert response.json["code"] == "invalid_credentials"
    assert any(e.action == "user.login_failed" for e in engine.audit_events(actor="olivia"))


def test_an_unknown_user_answers_like_a_wrong_password(api):
    response = api.post("/api/v1/tokens", json={"username": "nobody", "password": PASSWORD})
    assert (response.status_code, response.json["code"]) == (401, "invalid_credentials")


def test_a_token_request_without_a_password_is_refused_per_field(api):
    response = api.post("/api/v1/tokens", json={"username": "olivia"})
    assert response.status_code == 400
    assert "password" in response.json["errors"]


def test_a_request_without_a_token_answers_401_unauthenticated(api):
    response = api.get("/api/v1/instances")
    assert (response.status_code, response.json["code"]) == (401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_forged_token_answers_401_token_invalid(api):
    token = api.token("olivia")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "not-a-token", "eyJ1IjoiYWRhIn0.Zz.Zz"):
        response = api.get("/api/v1/instances", token=bad)
        assert (response.status_code, response.json["code"]) == (401, "token_invalid"), bad


def test_a_token_signed_with_another_key_is_invalid(api, engine):
    from webapp import create_app

    elsewhere = create_app({"SECRET_KEY": "another installation"}, engine=engine)
    token = Api(elsewhere, elsewhere.test_client()).token("olivia")
    assert api.get("/api/v1/tasks", token=token).json["code"] == "token_invalid"


def test_a_token_expires_after_eight_hours(api, clock):
    token = api.token("olivia")
    clock.advance(hours=7, minutes=59)
    assert api.get("/api/v1/tasks", token=token).status_code == 200
    clock.advance(minutes=2)
    response = api.get("/api/v1/tasks", token=token)
    assert (response.status_code, response.json["code"]) == (401, "token_expired")


def test_a_locked_accounts_token_stops_working(api):
    token = api.token("olivia")
    for _ in range(5):
        api.post("/api/v1/tokens", json={"username": "olivia", "password": "wrong password"})
    response = api.get("/api/v1/tasks", token=token)
    assert (response.status_code, response.json["code"]) == (401, "account_inactive")


def test_every_error_is_a_problem_document_with_a_stable_code(api):
    response = api.get("/api/v1/instances/424242", as_="ada")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert set(response.json) == {"type", "title", "status", "detail", "code"}
    assert response.json["status"] == 404
    assert response.json["title"] == "Not Found"
    assert response.json["type"].startswith("https://")
    assert response.json["code"]


def test_flasks_own_errors_are_problems_too(api):
    assert api.get("/api/v1/no-such-thing", as_="ada").json["code"] == "not_found"
    response = api.call("DELETE", "/api/v1/tasks", as_="ada")
    assert (response.status_code, response.json["code"]) == (405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_a_body_that_is_not_json_answers_400_bad_json(api):
    response = api.post("/api/v1/tokens", data="{not json", content_type="application/json")
    assert (response.status_code, response.json["code"]) == (400, "bad_json")
    response = api.post("/api/v1/tokens", json=["a", "list"])
    assert (response.status_code, response.json["code"]) == (400, "bad_json")


def test_a_body_over_one_megabyte_answers_413(api):
    response = api.post("/api/v1/tokens", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                        content_type="application/json")
    assert (response.status_code, response.json["code"]) == (413, "request_too_large")


def test_an_unexpected_error_answers_500_without_leaking_the_cause(api, engine, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/db")

    monkeypatch.setattr(engine, "list_instances", explode)
    response = api.get("/api/v1/instances", as_="ada")
    assert (response.status_code, response.json["code"]) == (500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)


def test_without_a_configured_key_the_secret_is_generated_once_and_kept_in_the_database(engine):
    from webapp import create_app

    configure(engine, secret_key=None)
    first, second = create_app(engine=engine), create_app(engine=engine)
    token = Api(first, first.test_client()).token("olivia")
    assert Api(second, second.test_client()).get("/api/v1/tasks", token=token).status_code == 200
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == engine.secret("secret_key")
