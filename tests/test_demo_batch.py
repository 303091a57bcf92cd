"""README's demo runs end to end on any day (issue 15, point 4): ``gmpflow init --demo`` dates the demo's
equipment, qualifications and lots from the day it runs, and ``gmpflow run`` starts the ERP/MES simulator
with the demo orders. Here the clock stands a year ahead of today: a demo set up then still releases an
order, runs every SOP step with the demo equipment, lots and people, and QA releases the batch — with the
demo users and the demo data only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles

from connectors.plugins import build_registry
from connectors.simulator.demo import demo_orders, start_alongside
from connectors.simulator.server import RunningSimulator
from engine import bootstrap, identity
from engine.audit import Actor
from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store import Database
from gmp.services import GmpServices

INIT = Actor("cli:demo", "demo (command line)")
A_YEAR_AHEAD = (datetime.now(timezone.utc).replace(hour=8, minute=0, second=0, microsecond=0)
                + timedelta(days=365))


class Demo:
    """The demo as ``scripts/setup-and-run`` leaves it, driven through the engine's services; the worker
    runs between the steps (``gmpflow run`` does that in the background)."""

    def __init__(self, database: Database, clock: FrozenClock, environ: dict[str, str]) -> None:
        self.clock = clock
        self.engine = Gmpflow(database, clock, registry=build_registry(environ), change_control="required")

    def init(self) -> None:  # what `gmpflow init --demo` does
        engine = self.engine
        engine.init_database()
        bootstrap.load_bundled_models(engine, INIT)
        bootstrap.add_demo_users(engine, INIT)
        bootstrap.load_demo_masterdata(engine, INIT)
        bootstrap.load_demo_steps(engine, INIT)  # the GMP pack's lots and cleanings

    def work(self) -> None:
        while self.engine.run_jobs_once():
            pass

    def instance(self, key: str, business_key: str) -> int:
        [row], _ = self.engine.list_instances(key=key, business_key=business_key)
        return row.id

    def sign(self, who: str, instance_id: int, element_id: str, data: dict[str, Any], meaning: str) -> None:
        person = self.engine.principal(who)
        [task] = [t for t in self.engine.list_tasks(person, instance_id=instance_id)
                  if t.element_id == element_id and t.state != "completed"]
        signature = {"username": who, "password": bootstrap.DEMO_PASSWORD, "meaning": meaning}
        shown = self.engine.task_view(person, task.id)["signed_record"]
        if shown is not None:  # a signature on a record covers the hash the task page showed
            signature["record_sha256"] = shown["sha256"]
        self.engine.complete_task(person, task.id, data, signature)
        self.work()

    def perform(self, who: str, step: int, values: dict[str, float], equipment: str | None = None,
                materials: list[dict[str, Any]] | None = None) -> int:
        instance_id = self.instance("sop_step", f"{self.batch_id}/{step:05d}")
        data = {"values": [{"name": k, "value": v} for k, v in values.items()],
                "equipment_id": equipment, "materials_used": materials or []}
        self.sign(who, instance_id, "perform", data, "Performed")
        return instance_id

    def open_elements(self, instance_id: int) -> list[str]:
        return sorted(t.element_id for t in self.engine.list_tasks(self.engine.principal("ada"),
                                                                   instance_id=instance_id))

    def status(self, instance_id: int) -> str:
        return self.engine.instance_detail(instance_id)["instance"].status


@pytest.fixture
def simulator_env() -> Iterator[tuple[RunningSimulator, dict[str, str]]]:
    environ: dict[str, str] = {"GMPFLOW_SIMULATOR_PORT": "0"}  # nothing configured, as on a fresh clone
    running = start_alongside(environ, today=A_YEAR_AHEAD.date())
    assert running is not None
    yield running, environ
    running.stop()


@pytest.fixture
def demo(database: Database, simulator_env: tuple[RunningSimulator, dict[str, str]],
         monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Demo:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    monkeypatch.setenv("GMPFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
    world = Demo(database, FrozenClock(A_YEAR_AHEAD), simulator_env[1])
    world.init()
    return world


def test_the_simulator_starts_for_every_connector_the_environment_leaves_unconfigured(
        simulator_env: tuple[RunningSimulator, dict[str, str]]) -> None:
    running, environ = simulator_env
    assert running.url.startswith("http://127.0.0.1:")
    assert (environ["GMPFLOW_ERP"], environ["GMPFLOW_ERP_URL"], environ["GMPFLOW_MES_URL"]) == (
        "simulator", running.url, running.url)
    assert sorted(running.counterpart.orders) == ["MO-DEMO-1001", "MO-DEMO-1002", "MO-DEMO-1003"]


def test_a_configured_erp_wins_and_gmpflow_simulator_off_starts_nothing() -> None:
    tryton = {"GMPFLOW_TRYTON_URL": "https://erp.example.com", "GMPFLOW_SIMULATOR_PORT": "0"}
    running = start_alongside(tryton)
    assert running is not None
    try:
        assert "GMPFLOW_ERP" not in tryton and "GMPFLOW_ERP_URL" not in tryton
        assert tryton["GMPFLOW_MES_URL"] == running.url  # no MES of its own: the simulator's
    finally:
        running.stop()
    off = {"GMPFLOW_SIMULATOR": "off"}
    assert start_alongside(off) is None and off == {"GMPFLOW_SIMULATOR": "off"}


def test_demo_dates_are_relative_to_the_day_of_init(engine: Gmpflow) -> None:
    today = date(2031, 2, 3)
    items = {(i["type"], i["key"]): i["data"] for i in bootstrap.demo_masterdata_items(engine, today)}
    assert items[("equipment", "EQ-PRESS-02")]["calibration_due"] > today.isoformat()
    assert items[("personnel_qualification", "oscar.compression")]["valid_until"] > today.isoformat()
    assert all(o["planned_start_date"] > today.isoformat() for o in demo_orders(today))
    assert bootstrap.dated({"a": ["@today-1d", "@today+10d", "today"]}, today) == {
        "a": ["2031-02-02", "2031-02-13", "today"]}


def test_the_demo_batch_runs_from_order_to_release_with_the_clock_a_year_ahead(demo: Demo) -> None:
    engine = demo.engine
    # the planner announces the ERP's demo order (as the ERP would); the supervisor releases it
    announced = engine.correlate(engine.principal("paula"), "order_ready", {"business_key": "MO-DEMO-1001"},
                                 {"order_id": "MO-DEMO-1001"})
    demo.work()
    order_release = int(announced["instance_id"])
    assert demo.open_elements(order_release) == ["release"]  # no finding: equipment, people, versions ok
    demo.sign("sam", order_release, "release", {"release_comment": "master data checked"}, "Released")
    demo.batch_id = engine.instance_detail(order_release)["variables"]["batch_id"]
    batch = demo.instance("sop_execution", demo.batch_id)

    # every SOP step with the demo lots, equipment and qualified operators; the critical step witnessed
    demo.perform("olivia", 1, {"paracetamol weight": 0.5}, materials=[
        {"material": "MAT-PARACETAMOL", "lot": "PARA-24-001", "quantity": 0.5, "unit": "kg"},
        {"material": "MAT-LACTOSE", "lot": "LAC-24-001", "quantity": 0.15, "unit": "kg"}])
    step2 = demo.perform("olivia", 2, {"impeller speed": 200, "granulate moisture": 2.0},
                         equipment="EQ-GRAN-01")
    demo.sign("oscar", step2, "verify", {"verified": True}, "Verified")
    demo.perform("oscar", 3, {"tablet weight": 650}, equipment="EQ-PRESS-02")
    demo.sign("olivia", batch, "record_yield", {"produced_quantity": 1000}, "Performed")
    assert demo.status(batch) == InstanceStatus.COMPLETED

    # QA reviews the record and its audit trail and releases the batch
    release = demo.instance("batch_release", demo.batch_id)
    demo.sign("quinn", release, "review_record", {"record_reviewed": True, "review_comment": "complete"},
              "Reviewed")
    demo.sign("quinn", release, "review_audit_trail", {"audit_trail_reviewed": True}, "Reviewed")
    demo.sign("quinn", release, "decide", {"disposition": "released", "decision_reason": "record complete"},
              "Released")
    assert demo.status(release) == InstanceStatus.COMPLETED
    record = engine.pack(GmpServices).batch_record(demo.batch_id)
    assert record["release"]["decision"]["disposition"] == "released"
    assert engine.verify_audit().ok
