"""The web pages' access rules and security settings, without a browser.

``EXPECTED`` names who may open every web route; a route added without an expectation fails
``test_every_web_route_has_an_expectation``, and the walk checks each one for an anonymous visitor and for
each role.
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

from engine import changes, identity
from engine.clock import FrozenClock
from engine.identity import DEFAULT_ROLES
from engine.services import Gmpflow
from tests.conftest import ADMIN, FIXTURES, ROOT
from tests.session_support import browser_session
from webapp import create_app
from webapp.guard import LIVE_HEADER, PUBLIC, SIGNED_IN, access_of, safe_next
from webapp.inbox import instructions_html, with_limits

PASSWORD = "correct horse battery"
VIEWERS = {"admin", "qa", "supervisor", "process_owner"}
MASTERDATA_READERS = {"data_steward", "qa", "admin", "process_owner", "planner", "supervisor"}
EXPECTED: dict[str, str | set[str]] = {
    "auth.login": PUBLIC, "auth.logout": PUBLIC, "auth.change_password": PUBLIC, "auth.account": SIGNED_IN,
    "home.index": SIGNED_IN, "home.favicon": PUBLIC,
    "inbox.inbox": SIGNED_IN, "inbox.task": SIGNED_IN, "inbox.claim": SIGNED_IN, "inbox.unclaim": SIGNED_IN,
    "inbox.complete": SIGNED_IN, "inbox.entry_check": SIGNED_IN,
    "start.start_page": SIGNED_IN, "start.start": SIGNED_IN, "live.marker": SIGNED_IN,
    "admin.instances": VIEWERS, "admin.instance": VIEWERS,
    "admin.record": SIGNED_IN, "batches.record": SIGNED_IN,
    "admin.change_status": {"admin"},
    "admin.incidents": {"admin"}, "admin.retry": {"admin"},
    "admin.audit": {"admin", "qa"}, "admin.export": {"admin", "qa"},
    "admin.users": {"admin"}, "admin.create_user": {"admin"}, "admin.set_active": {"admin"},
    "admin.unlock": {"admin"}, "admin.reset_password": {"admin"}, "admin.grant_role": {"admin"},
    "admin.remove_role": {"admin"},
    "modeler.processes": {"process_owner", "admin"}, "modeler.edit": {"process_owner", "admin"},
    "modeler.save": {"process_owner"}, "modeler.check": {"process_owner"},
    "modeler.submit": {"process_owner"},
    "modeler.open_files": {"process_owner"},
    "modeler.overview": VIEWERS,
    "masterdata.types": MASTERDATA_READERS, "masterdata.records": MASTERDATA_READERS,
    "masterdata.record": MASTERDATA_READERS, "masterdata.diff": MASTERDATA_READERS,
    "masterdata.draft": {"data_steward"}, "masterdata.propose": {"data_steward"},
    "batches.batches": {"qa", "admin", "supervisor"}, "batches.review": {"qa", "admin", "supervisor"},
    "genealogy.genealogy": SIGNED_IN,  # read like records (the engine): readers, the batches' participants
}
# signed in, then the engine's read rule (engine.access, as in the API): 403 for whoever took no part
READ_RULE = {"admin.record", "batches.record"}
SAMPLE_ARGS = {"task_id": 1, "instance_id": 1, "incident_id": 1, "fmt": "json", "action": "suspend",
               "username": "nobody", "role": "qa", "deployment_id": 1, "name": "material", "key": "MAT-1",
               "number": 1, "batch_id": "B-1", "lot_id": "L-1"}


@pytest.fixture
def app(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    return create_app({"SECRET_KEY": "route-walk", "SESSION_COOKIE_SECURE": False}, engine=engine)


def web_rules(app: Flask) -> list[Any]:
    return [r for r in app.url_map.iter_rules()
            if r.endpoint != "static" and not r.endpoint.startswith("api.")]


def sign_in(client: FlaskClient, engine: Gmpflow, username: str) -> None:
    browser_session(cast(Flask, client.application), client, engine, username)


def test_every_web_route_has_an_expectation(app: Flask) -> None:
    endpoints = {r.endpoint for r in web_rules(app)}
    assert endpoints - EXPECTED.keys() == set(), "add the new page's roles to EXPECTED"
    assert EXPECTED.keys() - endpoints == set(), "EXPECTED names a page that no longer exists"
    for endpoint, expected in EXPECTED.items():
        declared = access_of(app, endpoint)
        assert (declared if isinstance(declared, str) else set(declared or ())) == expected, endpoint


def test_every_route_answers_each_role_as_expected(app: Flask, engine: Gmpflow) -> None:
    for role in DEFAULT_ROLES:
        engine.add_user(ADMIN, f"walk_{role}", f"Walker {role}", PASSWORD, [role])
    visitors: list[str | None] = [None, *DEFAULT_ROLES]
    for rule in web_rules(app):
        url = app.url_map.bind("localhost").build(rule.endpoint, {a: SAMPLE_ARGS[a] for a in rule.arguments})
        expected = EXPECTED[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role in visitors:
                client = app.test_client()
                if role:
                    sign_in(client, engine, f"walk_{role}")
                status = client.open(url, method=method).status_code
                where = f"{method} {url} as {role or 'anonymous'}: {status}"
                if expected == PUBLIC:
                    assert status not in (403, 500), where
                elif role is None:
                    response = client.open(url, method=method)
                    assert status == 302 and "/login" in response.headers["Location"], where
                elif expected == SIGNED_IN or role in expected:
                    # allowed: a page, a redirect, a missing sample object, or (POST) the missing CSRF token
                    allowed = (200, 302, 400, 404) + ((403,) if rule.endpoint in READ_RULE else ())
                    assert status in allowed, where
                else:
                    assert status == 403, where


def test_a_form_post_without_the_csrf_token_is_refused(app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    refused = client.post("/login", data={"username": "olivia", "password": PASSWORD})
    assert refused.status_code == 400 and "Form expired" in refused.get_data(as_text=True)
    accepted = client.post("/login", data={"username": "olivia", "password": PASSWORD, "csrf_token": token})
    assert (accepted.status_code, accepted.headers["Location"]) == (302, "/inbox")
    assert client.post("/tasks/1/claim").status_code == 400  # signed in, still no token


def test_the_session_cookie_is_secure_http_only_and_same_site_by_default(
        engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    app = create_app({"SECRET_KEY": "cookies", "WTF_CSRF_ENABLED": False}, engine=engine)
    response = app.test_client().post("/login", data={"username": "olivia", "password": PASSWORD},
                                      base_url="https://localhost")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("gmpflow_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_an_idle_session_ends_after_the_configured_minutes(app: Flask, engine: Gmpflow,
                                                           clock: FrozenClock) -> None:
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    sign_in(client, engine, "olivia")
    clock.advance(minutes=14)
    assert client.get("/inbox").status_code == 200  # activity renews the session
    clock.advance(minutes=14)
    assert client.get("/inbox").status_code == 200
    clock.advance(minutes=15, seconds=1)
    response = client.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "without activity" in client.get("/login").get_data(as_text=True)


LIVE = {LIVE_HEADER: "1"}  # what static/js/page.js sends on a page's own fetches


def test_a_pages_background_refresh_is_not_activity_so_an_open_page_still_times_out(
        app: Flask, engine: Gmpflow, clock: FrozenClock) -> None:
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    sign_in(client, engine, "olivia")
    assert client.get("/inbox").status_code == 200  # she opens the inbox and leaves it open
    for _ in range(3):  # the open inbox polls for 15 minutes and refreshes its live parts
        clock.advance(minutes=5)
        polled, refreshed = client.get("/changes", headers=LIVE), client.get("/inbox", headers=LIVE)
        assert (polled.status_code, refreshed.status_code) == (200, 200)
        assert "Set-Cookie" not in polled.headers and "Set-Cookie" not in refreshed.headers
    clock.advance(seconds=1)
    expired = client.get("/changes", headers=LIVE)
    assert expired.status_code == 401  # not a redirect the fetch would follow: the page reloads itself
    response = client.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "without activity" in client.get("/login").get_data(as_text=True)


def test_a_background_refresh_leaves_a_flash_message_to_the_next_page_the_user_loads(
        app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    sign_in(client, engine, "olivia")
    with client.session_transaction() as cookie:  # what a form's answer leaves for the page it redirects to
        cookie["_flashes"] = [("success", "Instance 7 suspended.")]
    assert "Instance 7 suspended." not in client.get("/inbox", headers=LIVE).get_data(as_text=True)
    assert client.get("/inbox").get_data(as_text=True).count("Instance 7 suspended.") == 1
    assert "Instance 7 suspended." not in client.get("/inbox").get_data(as_text=True)  # shown once


def test_a_live_page_carries_the_marker_of_what_it_shows(app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    sign_in(client, engine, "olivia")

    def shown() -> str:
        found = re.search(r'<body[^>]* data-marker="(\w+)"', client.get("/inbox").get_data(as_text=True))
        assert found, "the inbox is a live page"
        return found.group(1)

    marker = shown()
    assert client.get("/changes", headers=LIVE).get_json()["marker"] == marker  # nothing changed since
    engine.add_user(ADMIN, "oscar", "Oscar Operator", PASSWORD, ["operator"])  # something changed
    assert client.get("/changes", headers=LIVE).get_json()["marker"] != marker
    assert shown() == client.get("/changes", headers=LIVE).get_json()["marker"]
    assert "data-marker" not in client.get("/account").get_data(as_text=True)  # a page without live parts


def test_a_deactivated_account_is_signed_out_at_its_next_request(app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    sign_in(client, engine, "olivia")
    engine.set_user_active(ADMIN, "olivia", False, "left the company")
    assert client.get("/inbox").status_code == 302


def test_failed_logins_count_toward_the_lockout(app: Flask, engine: Gmpflow) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    client = app.test_client()
    for _ in range(5):
        assert client.post("/login", data={"username": "olivia", "password": "wrong"}).status_code == 401
    locked = client.post("/login", data={"username": "olivia", "password": PASSWORD})
    assert locked.status_code == 401 and "locked" in locked.get_data(as_text=True)
    assert [u.locked for u in engine.list_users() if u.username == "olivia"] == [True]


def test_pages_carry_a_content_security_policy_and_templates_have_no_inline_script(app: Flask) -> None:
    headers = app.test_client().get("/login").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    for template in (ROOT / "webapp" / "templates").rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+=", template.read_text()), template.name  # no inline handlers


def test_the_start_page_lists_definitions_and_instance_counts(app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "ada", "Ada Admin", PASSWORD, ["admin"])
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    engine.start_instance(ADMIN, "demo_approval", "REQ-1")
    client = app.test_client()
    assert client.get("/").status_code == 302
    sign_in(client, engine, "ada")
    text = client.get("/").get_data(as_text=True)
    assert "demo_approval" in text and "<th>waiting</th><td>1</td>" in text


def test_markdown_instructions_render_without_raw_html() -> None:
    html = str(instructions_html("Weigh **twice**.<script>alert(1)</script> [x](javascript:alert(1))"))
    assert "<strong>twice</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html


def test_number_fields_show_their_limits() -> None:
    form = {"components": [{"key": "q", "type": "number", "validate": {"min": 1, "max": 5}},
                           {"key": "t", "type": "number", "validate": {"max": 9}, "description": "kg"},
                           {"key": "c", "type": "textfield"}]}
    shown = with_limits(form)["components"]  # type: ignore[index]
    assert [c.get("description") for c in shown] == ["Limits: 1 – 5", "kg · Maximum: 9", None]
    assert "description" not in form["components"][0]  # the model's form is not changed


@pytest.mark.parametrize("target, expected", [("/tasks/3", "/tasks/3"), ("//evil.example/x", "/inbox"),
                                              ("https://evil.example", "/inbox"), ("", "/inbox")])
def test_login_returns_only_to_local_pages(app: Flask, target: str, expected: str) -> None:
    with app.test_request_context():
        assert safe_next(target) == expected


def test_web_assets_are_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ("webapp/static/dist" in ignored  # no trailing slash: a link to built assets is ignored too
            and Path(ROOT / "webapp" / "static" / "css" / "gmpflow.css").exists())


def test_the_instance_list_pages_and_filters(app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "ada", "Ada Admin", PASSWORD, ["admin"])
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    for n in range(27):
        engine.start_instance(ADMIN, "demo_approval", f"ORD-{n:03}")
    client = app.test_client()
    sign_in(client, engine, "ada")
    second = client.get("/admin/instances?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count("ORD-0") == 2
    found = client.get("/admin/instances?business_key=ORD-007&status=waiting&process=demo_approval&version=1"
                       ).get_data(as_text=True)
    assert "1 found" in found and "ORD-007" in found
    assert "0 found" in client.get("/admin/instances?started_from=2999-01-01").get_data(as_text=True)


def test_an_admin_sees_every_task_but_works_only_those_of_their_lanes(app: Flask, engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "ada", "Ada Admin", PASSWORD, ["admin"])
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    engine.start_instance(ADMIN, "demo_approval", "ORD-1")
    client = app.test_client()
    sign_in(client, engine, "ada")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "Describe the request" in inbox and 'href="/tasks/1"' not in inbox and ">Claim<" not in inbox


def test_signing_refusals_are_explained_in_words(app: Flask, engine: Gmpflow) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    engine.add_user(ADMIN, "dual", "Dual Role", PASSWORD, ["operator", "qa"])
    engine.add_user(ADMIN, "quentin", "Quentin QA", PASSWORD, ["qa"])
    engine.deploy(ADMIN, [FIXTURES / "web_qa_release"])
    engine.start_instance(ADMIN, "qa_release", "B-1")
    dual = engine.principal("dual")
    engine.complete_task(dual, engine.inbox(dual)[0]["task"].id, {"lot": "L-1", "quantity_kg": 12})
    release = engine.inbox(dual)[0]["task"]
    client = app.test_client()
    sign_in(client, engine, "dual")
    form = {"data": json.dumps({"release": True, "qa_comment": "fine"}), "sign": "1", "sig_username": "dual",
            "sig_password": PASSWORD, "sig_meaning": "Approved"}
    refused = client.post(f"/tasks/{release.id}/complete", data=form)
    assert refused.status_code == 403 and "Another person must sign it" in refused.get_data(as_text=True)
    # the four-eyes rule is told first, whatever else was sent: the other refusals need a signer it allows
    client = app.test_client()
    sign_in(client, engine, "quentin")
    form = {**form, "sig_username": "quentin"}
    other = client.post(f"/tasks/{release.id}/complete", data={**form, "sig_username": "someone"})
    assert "only sign with your own account" in other.get_data(as_text=True)
    wrong = client.post(f"/tasks/{release.id}/complete", data={**form, "sig_password": "wrong"})
    assert "password is wrong" in wrong.get_data(as_text=True)
    for _ in range(5):  # every refused signing counts toward the lockout
        client.post(f"/tasks/{release.id}/complete", data={**form, "sig_password": "wrong"})
    assert client.get("/inbox").status_code == 302  # locked: signed out at once
    assert "locked" in client.get("/login").get_data(as_text=True)


def test_the_change_marker_moves_with_the_trail_but_tells_no_reader_how_much_happened(
        app: Flask, engine: Gmpflow) -> None:
    for name, role in (("olga", "operator"), ("quinn", "qa")):
        engine.add_user(ADMIN, name, name.title(), PASSWORD, [role])
    olga, quinn = app.test_client(), app.test_client()
    sign_in(olga, engine, "olga")
    sign_in(quinn, engine, "quinn")
    head = changes.head(engine.db)

    before = olga.get("/changes").get_json()["marker"]
    assert before != quinn.get("/changes").get_json()["marker"]  # means nothing to another reader
    assert before not in (head, str(head)) and olga.get("/changes").get_json()["marker"] == before

    engine.add_role(ADMIN, "weigher", "Weighs dispensed material", "new dispensing booth")
    after = olga.get("/changes").get_json()["marker"]
    assert changes.head(engine.db) > head and after != before
