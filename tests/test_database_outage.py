"""The database gone for a while: clear errors, then recovery without manual repair.

SQLite: the folder holding the database file is renamed away (a lost volume), so every new connection
fails with "unable to open database file". An open SQLite connection holds the file by descriptor and
would go on working, so the outage drops the connection pool (as a restarted web or worker process would
have none). PostgreSQL: the test database stops accepting connections (``ALLOW_CONNECTIONS false``) and
every backend connected to it is terminated (``pg_terminate_backend``), so pooled connections die mid-use.

While the database is away, API requests answer 503 ``database_unavailable`` (problem+json, Retry-After),
a page opened in a browser answers 503 with the site's error page saying the same in words, and the worker
loop (``engine.worker.JobLoop``, as in ``gmpflow worker``) logs each failed round and goes on. Once the
database is back, with nothing repaired by hand, the same requests succeed, the waiting service job runs
on the loop's next tick, the instance completes and the audit trail verifies.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from engine import identity
from engine.clock import Clock
from engine.services import Gmpflow
from engine.store import Database
from engine.worker import start_background_worker
from tests.conftest import ADMIN, ROOT
from tests.engine_support import POSTGRES_URL, emptied_postgres
from webapp import create_app

PASSWORD = "correct horse battery"
PEOPLE = {"olivia": "operator", "sam": "supervisor", "quinn": "qa"}


class Outage:
    """Takes the database away and brings it back, for one backend."""

    def __init__(self, db: Database, down: Callable[[], None], up: Callable[[], None]) -> None:
        self.db, self.down, self.up = db, down, up


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        folder, away = tmp_path / "volume", tmp_path / "volume-unmounted"
        folder.mkdir()
        shutil.copy(sqlite_template, folder / "gmpflow.db")
        db = Database(f"sqlite:///{folder / 'gmpflow.db'}")

        def down() -> None:
            folder.rename(away)
            db.engine.dispose()  # open descriptors would outlive the file; a real lost volume breaks them

        def up() -> None:
            away.rename(folder)

        yield Outage(db, down, up)
        if away.exists():
            up()
        db.dispose()
        return
    url = request.getfixturevalue("postgres_database")
    name = url.rsplit("/", 1)[1]
    db = emptied_postgres(url, tmp_path / "audit.key")
    admin = create_engine(str(POSTGRES_URL), isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def pg_down() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})

    def pg_up() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    try:
        yield Outage(db, pg_down, pg_up)
    finally:
        pg_up()
        db.dispose()
        admin.dispose()


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def test_requests_answer_503_and_the_worker_goes_on_while_the_database_is_away_then_recover(
        outage: Outage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    engine = Gmpflow(outage.db, Clock(), change_control="off")
    engine.record_start()
    engine.deploy(ADMIN, [ROOT / "gmp" / "processes" / "demo_approval"])
    for username, role in PEOPLE.items():
        engine.add_user(ADMIN, username, username.title(), PASSWORD, [role])
    app = create_app({"TESTING": True, "SECRET_KEY": "outage-secret"}, engine=engine)
    client = app.test_client()

    def token(username: str) -> str:
        response = client.post("/api/v1/tokens", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        return str(response.get_json()["token"])

    auth = {username: {"Authorization": f"Bearer {token(username)}"} for username in PEOPLE}
    started = client.post("/api/v1/process-definitions/demo_approval/instances",
                          json={"business_key": "OUTAGE-1", "variables": {}}, headers=auth["olivia"])
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]

    def complete_open_task(username: str, data: dict[str, Any]) -> Any:
        tasks = client.get(f"/api/v1/tasks?instance_id={instance_id}&state=open", headers=auth[username])
        assert tasks.status_code == 200 and len(tasks.get_json()) == 1, tasks.get_json()
        return client.post(f"/api/v1/tasks/{tasks.get_json()[0]['id']}/complete", json={"data": data},
                           headers=auth[username])

    for username, data in (("olivia", {"quantity": 5, "comment": "before the outage"}),
                           ("sam", {"accepted": True})):
        assert complete_open_task(username, data).status_code == 200
    qa_task = client.get(f"/api/v1/tasks?instance_id={instance_id}&state=open",
                         headers=auth["quinn"]).get_json()[0]
    browser = app.test_client()  # quinn signed in on the web pages too
    login_page = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)  # type: ignore[union-attr]
    signed_in = browser.post("/login", data={"username": "quinn", "password": PASSWORD, "csrf_token": csrf})
    assert signed_in.status_code == 302
    page_accept = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    events_before = len(engine.audit_events(limit=100_000))

    caplog.set_level(logging.ERROR)
    outage.down()
    try:
        scheduler = start_background_worker(engine, interval=0.1)
        try:
            answers = [client.get("/api/v1/tasks", headers=auth["quinn"]),
                       client.get(f"/api/v1/instances/{instance_id}", headers=auth["quinn"]),
                       client.post(f"/api/v1/tasks/{qa_task['id']}/complete",
                                   json={"data": {"accepted": True}}, headers=auth["quinn"]),
                       client.post("/api/v1/tokens", json={"username": "quinn", "password": PASSWORD})]
            for answer in answers:
                body = answer.get_json()
                assert answer.status_code == 503, (answer.request.path, body)
                assert answer.mimetype == "application/problem+json"
                assert body["code"] == "database_unavailable" and answer.headers["Retry-After"] == "5"
                assert "sqlite" not in body["detail"].lower() and "psycopg" not in body["detail"].lower()
            page = browser.get("/inbox", headers=page_accept)
            assert page.status_code == 503 and page.mimetype == "text/html", page.get_data(as_text=True)[:300]
            assert "The database is not reachable" in page.get_data(as_text=True)
            assert ("database_unavailable" in page.get_data(as_text=True)
                    and page.headers["Retry-After"] == "5")
            # the worker loop keeps ticking through the outage, logging each failure
            _wait(lambda: sum(r.message == "worker tick failed" for r in caplog.records) >= 3, 20,
                  "three failed worker ticks")
            assert scheduler.running
        finally:
            outage.up()
        # back: the same requests succeed, nothing repaired by hand; the loop is the same one
        completed = complete_open_task("quinn", {"accepted": True})
        assert completed.status_code == 200, completed.get_json()

        def instance_status() -> str:
            return str(client.get(f"/api/v1/instances/{instance_id}",
                                  headers=auth["quinn"]).get_json()["status"])

        _wait(lambda: instance_status() == "completed", 20, "the service job to run after the outage")
        assert token("quinn")
    finally:
        if scheduler := locals().get("scheduler"):
            scheduler.shutdown(wait=True)

    actions = [e.action for e in engine.audit_events(limit=100_000)[events_before:]]
    assert actions.count("task.completed") == 1 and actions.count("job.completed") == 1, actions
    report = engine.verify_audit()
    assert report.ok, report
    verified = client.get("/api/v1/audit/verify", headers=auth["quinn"])
    assert verified.status_code == 200 and verified.get_json()["ok"] is True, verified.get_json()
