"""Fixtures for the browser journeys.

``live`` serves the web app with ``gmpflow run``'s server (``webapp.server``) on 127.0.0.1 and a free port,
in a thread, over a fresh SQLite engine (change control off, demo users, the shipped processes and two test
processes, a frozen clock the tests move). ``browser`` is Debian's Chromium driven by Playwright; ``page``
is a fresh browser context per test that fails the test on a JavaScript error or a content-security-policy
violation. Screenshots go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles

from engine import bootstrap, identity
from engine.clock import FrozenClock
from engine.operations import configured_registry
from engine.services import Gmpflow
from engine.store import Database
from engine.store.migrate import upgrade
from tests.conftest import ADMIN, FIXTURES, ROOT
from webapp.server import make_server, stop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "test-artifacts" / "web"
PASSWORD = bootstrap.DEMO_PASSWORD
TIMEOUT_MS = 10_000


@dataclass
class Live:
    url: str
    engine: Gmpflow
    clock: FrozenClock

    def start(self, key: str, business_key: str, who: str = "olivia", **variables: Any) -> int:
        return self.engine.start_instance(self.engine.principal(who).actor, key, business_key, variables).id

    def task_of(self, instance_id: int, element_id: str, who: str = "ada") -> Any:
        rows = [r["task"] for r in self.engine.inbox(self.engine.principal(who))
                if r["task"].instance_id == instance_id and r["task"].element_id == element_id]
        assert len(rows) == 1, rows
        return rows[0]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GMPFLOW_CHANGE_CONTROL", "off")
        # argon2's cheapest parameters: production cost would dominate the suite
        patch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('web') / 'gmpflow.db'}")
        upgrade(db)
        clock = FrozenClock()
        # the shipped connectors
        engine = Gmpflow(db, clock, change_control="off", registry=configured_registry())
        engine.record_start()
        bootstrap.load_bundled_models(engine, ADMIN)
        engine.deploy(ADMIN, [FIXTURES / "web_qa_release"])
        engine.deploy(ADMIN, [FIXTURES / "service_retry_incident.bpmn"])
        bootstrap.add_demo_users(engine, ADMIN)
        try:
            with serving(engine) as url:
                yield Live(url, engine, clock)
        finally:
            db.dispose()


@contextmanager
def serving(engine: Gmpflow) -> Iterator[str]:
    """The web app over ``engine`` on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    from webapp import create_app

    # live pages poll /changes every 300 ms here (5 s in use): a refresh is awaited, never slept for
    app = create_app({"SECRET_KEY": "browser-tests", "SESSION_COOKIE_SECURE": False, "LIVE_POLL_MS": 300},
                     engine=engine)
    server = make_server(app, "127.0.0.1", 0)  # gmpflow run's server
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop(server)
        thread.join(5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does, as root)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long as actions do (a loaded machine)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    size = getattr(request, "param", None) or {"width": 1280, "height": 900}
    context = browser.new_context(viewport=size, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    context.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    context.on("weberror", lambda e: problems.append(str(e.error)))
    tab.problems = problems
    yield tab
    context.close()
    # a 4xx page is an expected answer in some journeys; script errors and CSP violations never are
    unexpected = [p for p in problems if not re.search(r"status of (400|401|403|409|422)", p)]
    assert not unexpected, unexpected


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, live: Live, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/inbox$"))


def form_ready(page: Any) -> None:
    page.wait_for_selector("body[data-form-ready=true]")
