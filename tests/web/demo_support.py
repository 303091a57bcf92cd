"""The demo as README's set-up leaves it, served to a browser: ``gmpflow init --demo`` on a fresh SQLite file
of the test's own (shipped models, demo users, master data, lots and cleanings, change control required),
the ERP/MES simulator beside it with the demo orders (as ``gmpflow run`` starts it), and the web app on a
free port. The worker is the test's: ``DemoSite.work()`` runs the due jobs between two user actions, as
``gmpflow run``'s background worker would, so that no test waits for time to pass."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import func, select

from connectors.plugins import build_registry
from connectors.simulator.demo import start_alongside
from connectors.simulator.server import RunningSimulator
from engine import bootstrap, identity
from engine.audit import Actor
from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.states import JobState
from engine.store import Database
from engine.store.models import Job
from tests.web.conftest import PASSWORD, form_ready, serving

INIT = Actor("cli:demo", "demo (command line)")
MAX_ATTEMPTS = 4  # a job's own default is 3


def init_demo(engine: Gmpflow) -> None:
    """What ``gmpflow init --demo`` does (``engine/cli.py``), in the same order."""
    engine.init_database()
    bootstrap.load_bundled_models(engine, INIT)
    bootstrap.add_demo_users(engine, INIT)
    bootstrap.load_demo_masterdata(engine, INIT)
    bootstrap.load_demo_steps(engine, INIT)  # the GMP pack's lots and cleanings


@dataclass
class DemoSite:
    url: str
    engine: Gmpflow
    clock: FrozenClock
    simulator: RunningSimulator

    def work(self) -> None:
        """Run every due job (connector calls, message deliveries) as the background worker would, including
        the retries it would make after their back-off (a script stopped by the sandbox's wall-clock limit
        on a loaded machine is retried); fail with the error of any incident left open."""
        for _ in range(MAX_ATTEMPTS):
            while self.engine.run_jobs_once():
                pass
            retry_at = self._next_retry()
            if retry_at is None:
                break
            self.clock.advance(seconds=max((retry_at - self.clock.now()).total_seconds(), 0))
        incidents = self.engine.list_incidents()
        assert not incidents, [(i.element_id, i.error) for i in incidents]

    def _next_retry(self) -> datetime | None:
        with self.engine.db.read() as session:
            due: datetime | None = session.scalar(select(func.min(Job.due_at)).where(
                Job.state == JobState.PENDING, Job.last_error.is_not(None)))
        return due.replace(tzinfo=timezone.utc) if due is not None and due.tzinfo is None else due

    def instance(self, key: str, business_key: str) -> int:
        [row], _ = self.engine.list_instances(key=key, business_key=business_key)
        return int(row.id)

    def open_elements(self, instance_id: int) -> list[str]:
        return sorted(t.element_id for t in self.engine.list_tasks(self.engine.principal("ada"),
                                                                   instance_id=instance_id))


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[DemoSite]:
    with pytest.MonkeyPatch.context() as patch:
        # argon2's cheapest parameters: production cost would dominate the walk
        patch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        patch.setenv("GMPFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
        clock = FrozenClock(datetime.now(timezone.utc).replace(microsecond=0))
        environ = {"GMPFLOW_SIMULATOR_PORT": "0"}  # nothing configured, as on a fresh clone
        simulator = start_alongside(environ, today=clock.now().date())
        assert simulator is not None
        db = Database(f"sqlite:///{tmp_path / 'gmpflow.db'}")
        try:
            engine = Gmpflow(db, clock, registry=build_registry(environ), change_control="required")
            init_demo(engine)
            with serving(engine) as url:
                yield DemoSite(url, engine, clock, simulator)
        finally:
            db.dispose()
            simulator.stop()


def open_task(page: Any, site: DemoSite, task_name: str) -> None:
    """The signed-in user's task ``task_name``, opened from the inbox."""
    page.goto(f"{site.url}/inbox")
    page.get_by_role("link", name=task_name, exact=True).click()
    form_ready(page)


def sign_in_dialog(page: Any, username: str, meaning: str | None = None) -> None:
    """Fill the open signing dialog as ``username`` (choosing ``meaning`` where the step offers several) and
    sign."""
    dialog = page.locator("#sign-dialog")
    dialog.wait_for(state="visible")
    if meaning is not None:
        field = dialog.get_by_label("Meaning")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(meaning)
        assert field.input_value() == meaning
    dialog.get_by_label("Username").fill(username)
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign").click()


def sign_back_to_inbox(page: Any, site: DemoSite, username: str, meaning: str | None = None) -> None:
    """Sign the open dialog (``sign_in_dialog``), land on the inbox again, and run the worker's round for the
    jobs the completion made due."""
    sign_in_dialog(page, username, meaning)
    page.wait_for_url(re.compile(r".*/inbox$"))
    site.work()


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login.*"))


def choose(page: Any, label: str, option: str, within: Any = None) -> None:
    """Pick ``option`` of form-js's select ``label`` (a drop-down list, not a native select)."""
    field = (within or page).locator(".fjs-form-field", has=page.get_by_label(label))
    if not field.locator(".fjs-dropdownlist").is_visible():  # the page's focus on the first field opened it
        field.locator(".fjs-input-group").click()
    field.locator(".fjs-dropdownlist-item").get_by_text(option, exact=True).click()
    assert field.locator(".fjs-select-display").inner_text() == option
