"""Fixtures of the SOP execution and batch release scenarios (processes/sop_execution,
processes/batch_release).

``plant`` is one scenario's world: the ERP/MES simulator on 127.0.0.1, an engine whose registry has its
``erp.*`` and ``mes.*`` operations, real accounts (signing checks passwords), the master data (equipment,
materials, product, a 3-step SOP) and the three processes deployed. With ``reload`` every call meets a
freshly built engine on the same database (save-and-reload between every step).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles

from connectors.plugins import build_registry
from connectors.simulator.server import RunningSimulator, serve
from engine import bootstrap, identity
from engine.clock import FrozenClock
from engine.identity import Principal
from engine.runtime.rows import TaskRow
from engine.services import Gmpflow
from engine.store import Database
from gmp.services import GmpServices
from tests.conftest import ADMIN, ROOT

PASSWORD = "correct horse battery"
PEOPLE = {"olivia": ["operator"], "oscar": ["operator"], "otto": ["operator"],  # otto takes no part
          "sam": ["supervisor"], "quinn": ["qa"],
          "rita": ["qa", "operator"], "ada": ["admin"], "vera": ["qa", "supervisor", "operator"]}
DEMO = ROOT / "gmp" / "masterdata" / "demo"
SOP_KEY = "SOP-TEST"
SOP = {"product": "PRD-PARA-500", "description": "Three-step test SOP", "steps": [
    {"number": 1, "instruction": "Weigh the paracetamol.",
     "parameters": [{"name": "weight", "unit": "kg", "target": 0.5, "low": 0.495, "high": 0.505,
                     "critical": False}],
     "materials": [{"material": "MAT-PARACETAMOL", "quantity": 0.5, "unit": "kg"}]},
    {"number": 2, "instruction": "Granulate; stop at the end point.",
     "required_equipment_class": "GRANULATOR",
     "parameters": [{"name": "impeller speed", "unit": "rpm", "target": 200, "low": 180, "high": 220,
                     "critical": False},
                    {"name": "moisture", "unit": "%", "target": 2.0, "low": 1.5, "high": 2.5,
                     "critical": True}],
     "materials": [{"material": "MAT-LACTOSE", "quantity": 0.15, "unit": "kg"}]},
    {"number": 3, "instruction": "Blend for the set time.",
     "parameters": [{"name": "blend time", "unit": "min", "target": 10, "low": 9, "high": 11,
                     "critical": False}]},
]}
PROCESSES = [ROOT / "gmp" / "processes" / name
             for name in ("sop_step", "sop_execution", "batch_release", "sop_correction", "batch_reopen",
                          "equipment_cleaning")]
LOTS = {"L-PARA-7": "MAT-PARACETAMOL", "L-LAC-3": "MAT-LACTOSE"}  # released, 10 kg each, a year to expiry


def sig(username: str, meaning: str) -> dict[str, Any]:
    return {"username": username, "password": PASSWORD, "meaning": meaning}


def demo_item(file: str, key: str, today: date | None = None) -> dict[str, Any]:
    """One item of ``masterdata/demo/FILE``, its relative dates ("@today+180d") resolved from ``today``."""
    item = next(item for item in json.loads((DEMO / file).read_text()) if item["key"] == key)
    return bootstrap.dated(item, today or date.today())  # type: ignore[no-any-return]


def effective(engine: Gmpflow, type_name: str, key: str, data: dict[str, Any]) -> Any:
    version = engine.masterdata.create_record(ADMIN, type_name, key, key, data)
    engine.masterdata.submit(ADMIN, type_name, key, version.number)
    return engine.masterdata.make_effective(ADMIN, version.id, None, None)


class Plant:
    def __init__(self, database: Database, clock: FrozenClock, simulator: RunningSimulator,
                 reload: bool) -> None:
        self.database, self.clock, self.simulator, self.reload = database, clock, simulator, reload
        self.registry = build_registry({"GMPFLOW_ERP": "simulator", "GMPFLOW_ERP_URL": simulator.url,
                                        "GMPFLOW_MES_URL": simulator.url})
        self._engine = Gmpflow(database, clock, registry=self.registry, change_control="off")
        self.people: dict[str, Principal] = {}

    @property
    def engine(self) -> Gmpflow:
        if self.reload:
            self._engine = Gmpflow(self.database, self.clock, registry=self.registry, change_control="off")
        return self._engine

    # -- set-up -----------------------------------------------------------------------------------------
    def set_up(self) -> None:
        engine = self.engine
        engine.record_start()
        engine.masterdata.load_types(ADMIN)
        for username, roles in PEOPLE.items():
            engine.add_user(ADMIN, username, f"{username.title()} Example", PASSWORD, roles)
        self.people = {username: engine.principal(username) for username in PEOPLE}
        for file, key in (("equipment_classes.json", "GRANULATOR"), ("materials.json", "MAT-PARACETAMOL"),
                          ("materials.json", "MAT-LACTOSE")):
            item = demo_item(file, key)
            effective(engine, item["type"], key, item["data"])
        effective(engine, "product", "PRD-PARA-500", demo_item("product.json", "PRD-PARA-500")["data"])
        effective(engine, "equipment", "EQ-GRAN-01",
                  demo_item("equipment.json", "EQ-GRAN-01", self.clock.now().date())["data"])
        self.sop = effective(engine, "recipe", SOP_KEY, SOP)
        for path in PROCESSES:
            engine.deploy(ADMIN, [path])
        self.clean("EQ-GRAN-01")
        for lot_id, material in LOTS.items():
            self.receive_released_lot(lot_id, material)

    def receive_released_lot(self, lot_id: str, material: str, quantity: float = 10, uom: str = "kg",
                             expiry_days: int = 365) -> dict[str, Any]:
        """A lot stored released (as ``init --demo`` stores its released lots: no disposition run here)."""
        expiry = (self.clock.now() + timedelta(days=expiry_days)).date().isoformat()
        lot = {"lot_id": lot_id, "material": material, "quantity": quantity, "uom": uom, "expiry": expiry}
        return self.engine.pack(GmpServices).create_lot(ADMIN, lot, released_by_init=True)

    def clean(self, equipment_id: str, performer: str = "olivia", verifier: str = "sam") -> int:
        """Clean the equipment through the cleaning model (Performed, then Verified by a second person)."""
        started = self.engine.start_instance(self.people[performer], "equipment_cleaning", equipment_id,
                                             {"equipment_id": equipment_id})
        instance_id = int(started.id)
        self.complete(performer, instance_id, "perform_cleaning",
                      {"cleaning_method": "washed with purified water, dried", "cleaned_per_sop": True},
                      "Performed")
        self.complete(verifier, instance_id, "verify_cleaning", {"visually_clean": True}, "Verified")
        return instance_id

    def start_batch(self, batch_id: str = "B-1", order: str = "MO-1", product: str = "PRD-PARA-500") -> int:
        self.simulator.counterpart.add_order(order, product, 1000, state="running")
        payload = {"order_id": order, "batch_id": batch_id, "product": product, "quantity": 1000,
                   "recipe_key": SOP_KEY, "recipe_version": self.sop.number, "recipe_version_id": self.sop.id,
                   "bom_version_id": None, "routing_version_id": None, "released_by": "paula",
                   "released_at": self.clock.now().isoformat()}
        started = self.engine.correlate(ADMIN, "batch_execution_requested", {"business_key": batch_id},
                                        payload)
        self.run_jobs()
        return int(started["instance_id"])

    # -- driving ----------------------------------------------------------------------------------------
    def run_jobs(self) -> int:
        total = 0
        while ran := self.engine.run_jobs_once():
            total += ran
        return total

    def instance(self, key: str, business_key: str) -> int:
        rows, _ = self.engine.list_instances(key=key, business_key=business_key)
        assert len(rows) == 1, rows
        return rows[0].id

    def step(self, batch_id: str, number: int) -> int:
        return self.instance("sop_step", f"{batch_id}/{number:05d}")

    def task(self, who: str, instance_id: int, element_id: str) -> TaskRow:
        found = [t for t in self.engine.list_tasks(self.people[who], instance_id=instance_id)
                 if t.element_id == element_id]
        assert len(found) == 1, [t.element_id
                                 for t in self.engine.list_tasks(self.people[who], instance_id=instance_id)]
        return found[0]

    def complete(self, who: str, instance_id: int, element_id: str, data: dict[str, Any],
                 meaning: str | None = None) -> TaskRow:
        task = self.task(who, instance_id, element_id)
        signature = sig(who, meaning) if meaning else None
        if signature is not None:  # a signature on a record covers the hash the task page showed
            shown = self.engine.task_view(self.people[who], task.id)["signed_record"]
            if shown is not None:
                signature["record_sha256"] = shown["sha256"]
        done = self.engine.complete_task(self.people[who], task.id, data, signature)
        self.run_jobs()
        return done

    def open_elements(self, instance_id: int) -> list[str]:
        return sorted(t.element_id
                      for t in self.engine.list_tasks(self.people["ada"], instance_id=instance_id))

    def status(self, instance_id: int) -> str:
        return self.engine.instance_detail(instance_id)["instance"].status

    def perform(self, who: str, batch_id: str, number: int, values: dict[str, float],
                equipment: str | None = None, materials: list[dict[str, Any]] | None = None) -> int:
        instance_id = self.step(batch_id, number)
        self.complete(who, instance_id, "perform",
                      {"values": [{"name": k, "value": v} for k, v in values.items()],
                       "equipment_id": equipment, "materials_used": materials or []}, "Performed")
        return instance_id


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    running = serve()
    yield running
    running.stop()


@pytest.fixture
def plant(database: Database, clock: FrozenClock, simulator: RunningSimulator, reload: bool,
          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Plant:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    monkeypatch.setenv("GMPFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
    world = Plant(database, clock, simulator, reload)
    world.set_up()
    return world
