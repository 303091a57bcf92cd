"""The order-release process (processes/order_release) end to end: a production order created in a real
Tryton (tests/tryton_server.py, shared by the session) is announced by message, checked against master
data, released with a signature, downloaded to the MES simulator as schema-valid B2MML and set running in
Tryton; then batch execution is requested by message. And every exception path: uncalibrated equipment
(override, signed), expired qualification (fixed in master data, checked again), missing material (stock
received, checked again), wrong recipe version (rejected: Tryton cancels the order), the MES never
acknowledges (escalation), the ERP down (retries, incident, admin retry, no duplicate in the MES).

Every scenario runs cached and with save-and-reload between steps (``reload``)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from connectors.plugins import build_registry
from connectors.simulator.server import RunningSimulator, serve
from engine import identity
from engine.clock import FrozenClock
from engine.errors import GmpflowError
from engine.identity import Principal
from engine.operations import OperationRegistry
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store import Database
from engine.store.models import Message
from gmp import batch_flags
from tests.b2mml_schema import assert_valid
from tests.conftest import ADMIN
from tests.scenario_support import ScenarioEngine
from tests.tryton_server import TrytonServer

pytestmark = pytest.mark.tryton

PROCESS = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"
PEOPLE = {"paula": ["planner"], "sam": ["supervisor"], "ada": ["admin"], "erp": ["integration"]}
TODAY = date.today()
CONTRACT = {"order_id", "batch_id", "product", "quantity", "recipe_key", "recipe_version",
            "recipe_version_id", "bom_version_id", "routing_version_id", "released_by", "released_at"}


# -- counterparts --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    running = serve()
    yield running
    running.stop()


def control(simulator: RunningSimulator, **settings: object) -> None:
    request = urllib.request.Request(f"{simulator.url}/_control", data=json.dumps(settings).encode(),
                                     method="POST")
    urllib.request.urlopen(request).close()


def schedules_of(simulator: RunningSimulator, order: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{simulator.url}/received") as response:
        return [r for r in json.loads(response.read())
                if r["kind"] == "ProcessOperationsSchedule" and r["order"] == order]


@pytest.fixture
def mes(simulator: RunningSimulator) -> RunningSimulator:
    control(simulator, acknowledge=True, fail_next=0)
    return simulator


# -- the engine ----------------------------------------------------------------------------------------------
class ReleaseEngine(ScenarioEngine):
    """A scenario engine whose engines carry the connector registry."""

    def __init__(self, database: Database, clock: FrozenClock, registry: OperationRegistry,
                 reload: bool) -> None:
        self.registry = registry
        first = Gmpflow(database, clock, registry=registry, change_control="off")
        first.record_start()
        super().__init__(database, clock, first, reload)

    def restart(self) -> Gmpflow:
        self.current = Gmpflow(self.database, self.clock, registry=self.registry, change_control="off")
        self.engines_built += 1
        return self.current


def build(database: Database, clock: FrozenClock, registry: OperationRegistry, reload: bool,
          monkeypatch: pytest.MonkeyPatch, **masterdata_changes: Any) -> ReleaseEngine:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    flow = ReleaseEngine(database, clock, registry, reload)
    engine = flow.current
    for username, roles in PEOPLE.items():
        engine.add_user(ADMIN, username, f"{username.title()} Example", PASSWORD, roles)
    seed_masterdata(engine, **masterdata_changes)
    engine.deploy(ADMIN, [PROCESS])
    return flow


@pytest.fixture
def people(database: Database) -> dict[str, Principal]:
    return {name: Principal(name, f"{name.title()} Example", frozenset(roles))
            for name, roles in PEOPLE.items()}


@pytest.fixture
def make_flow(database, clock, reload, tryton, mes, monkeypatch):  # type: ignore[no-untyped-def]
    """``make_flow(**masterdata_changes)``: the engine on Tryton (ERP) and the simulator (MES)."""
    registry = build_registry({**tryton.environ, "GMPFLOW_MES_URL": mes.url})
    return lambda **changes: build(database, clock, registry, reload, monkeypatch, **changes)


# -- master data (product TAB-100 as Tryton's seed names it) -------------------------------------------------
def effective(engine: Gmpflow, type_name: str, key: str, data: dict[str, Any]) -> Any:
    version = engine.masterdata.create_record(ADMIN, type_name, key, key, data)
    engine.masterdata.submit(ADMIN, type_name, key, 1)
    return engine.masterdata.make_effective(ADMIN, version.id, None, None)


def new_version(engine: Gmpflow, type_name: str, key: str, data: dict[str, Any]) -> Any:
    draft = engine.masterdata.new_draft(ADMIN, type_name, key, data)
    engine.masterdata.submit(ADMIN, type_name, key, draft.number)
    return engine.masterdata.make_effective(ADMIN, draft.id, None, None)


def qualification(person: str, skill: str, valid_until: date) -> dict[str, Any]:
    return {"person": person, "qualification": skill, "valid_until": valid_until.isoformat()}


def seed_masterdata(engine: Gmpflow, *, press_calibration_due: date | None = None,
                    compression_valid_until: date | None = None) -> None:
    engine.masterdata.load_types(ADMIN)
    for code in ("API-001", "EXC-002"):
        effective(engine, "material", code, {"id": code, "supplier": "Acme Chemicals", "unit_of_measure": "u",
                                             "shelf_life_days": 365})
    effective(engine, "product", "TAB-100", {"part_number": "TAB-100",
                                             "description": "Paracetamol 500 mg tablet", "unit": "u"})
    for code in ("GRANULATOR", "TABLET_PRESS"):
        effective(engine, "equipment_class", code, {"code": code, "description": code.title()})
    effective(engine, "equipment", "EQ-GRAN-01", {
        "id": "EQ-GRAN-01", "class": "GRANULATOR", "status": "available", "cleaning_status": "clean",
        "calibration_due": (TODAY + timedelta(days=180)).isoformat()})
    effective(engine, "equipment", "EQ-PRESS-01", {
        "id": "EQ-PRESS-01", "class": "TABLET_PRESS", "status": "available", "cleaning_status": "clean",
        "calibration_due": (press_calibration_due or TODAY + timedelta(days=180)).isoformat()})
    effective(engine, "recipe", "SOP-TAB-100", {
        "product": "TAB-100", "description": "Paracetamol tablets", "steps": [
        {"number": 1, "instruction": "Granulate.", "required_equipment_class": "GRANULATOR",
         "required_qualification": "granulation"},
        {"number": 2, "instruction": "Compress.", "required_equipment_class": "TABLET_PRESS",
         "required_qualification": "compression"}]})
    effective(engine, "bom", "BOM-TAB-100", {"product": "TAB-100", "lines": [
        {"material": "API-001", "quantity": 2, "unit": "u", "tolerance_percent": 1},
        {"material": "EXC-002", "quantity": 3, "unit": "u", "tolerance_percent": 5}]})
    effective(engine, "routing", "RTG-TAB-100", {"product": "TAB-100", "operations": [
        {"number": 10, "name": "Granulate", "work_center": "GRAN", "duration_minutes": 90},
        {"number": 20, "name": "Compress", "work_center": "PRESS", "duration_minutes": 240}]})
    effective(engine, "personnel_qualification", "olivia.granulation",
              qualification("olivia", "granulation", TODAY + timedelta(days=365)))
    effective(engine, "personnel_qualification", "oscar.compression",
              qualification("oscar", "compression", compression_valid_until or TODAY + timedelta(days=365)))


# -- steps ---------------------------------------------------------------------------------------------------
def sig(username: str, meaning: str) -> dict[str, str]:
    return {"username": username, "password": PASSWORD, "meaning": meaning}


def announce(flow: ReleaseEngine, order: dict[str, Any], **extra: Any) -> int:
    """The ERP announces the order (what POST /api/v1/messages does); returns the new instance."""
    result = flow.correlate(ADMIN, "order_ready", {"business_key": order["number"]},
                            {"order_id": order["number"], **extra})
    assert result["status"] == "matched", result
    flow.run_jobs()
    return int(result["instance_id"])


def task_of(flow: ReleaseEngine, who: Principal, instance_id: int, element_id: str) -> Any:
    return flow.task(who, instance_id, element_id)


def complete(flow: ReleaseEngine, who: Principal, instance_id: int, element_id: str, data: dict[str, Any],
             meaning: str | None = None) -> None:
    task = flow.task(who, instance_id, element_id)
    flow.complete_task(who, task.id, data, sig(who.username, meaning) if meaning else None)
    flow.run_jobs()


def release(flow: ReleaseEngine, people: dict[str, Principal], instance_id: int) -> None:
    complete(flow, people["sam"], instance_id, "release", {"release_comment": "checked"}, "Released")


def thrown_requests(flow: ReleaseEngine, batch_id: str) -> list[Message]:
    with flow.database.read() as session:
        return list(session.scalars(select(Message).where(Message.name == "batch_execution_requested")))


def assert_execution_requested(flow: ReleaseEngine, order: dict[str, Any],
                               instance_id: int) -> dict[str, Any]:
    variables = flow.variables(instance_id)
    batch_id = variables["batch_id"]
    found = [m for m in thrown_requests(flow, batch_id) if m.correlation_keys == {"business_key": batch_id}]
    assert len(found) == 1, [m.correlation_keys for m in thrown_requests(flow, batch_id)]
    payload = found[0].payload
    assert set(payload) == CONTRACT
    assert payload["order_id"] == order["number"] and payload["batch_id"] == batch_id
    assert payload["product"] == "TAB-100" and payload["released_by"] == "sam"
    assert payload["recipe_key"] == "SOP-TAB-100" and payload["recipe_version"] == 1
    assert all(isinstance(payload[k], int)
               for k in ("recipe_version_id", "bom_version_id", "routing_version_id"))
    return payload


# -- end to end ----------------------------------------------------------------------------------------------
def test_an_order_from_tryton_is_released_downloaded_to_the_mes_and_set_running(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people, b2mml_schema):
    flow = make_flow()
    order = tryton.create_order(10)
    instance_id = announce(flow, order)
    variables = flow.variables(instance_id)
    assert variables["readiness"] == "ready" and variables["findings"] == []
    assert variables["md"]["bom"]["version"] == 1 and variables["md"]["named_versions"]["bom"] == 1
    assert tryton.read_order(order["id"])["state"] == "assigned"  # the materials are reserved

    release(flow, people, instance_id)

    sent = schedules_of(mes, order["number"])
    assert len(sent) == 1
    assert_valid(b2mml_schema, sent[0]["xml"].encode())
    assert "SOP-TAB-100 v1" in sent[0]["xml"]
    assert tryton.read_order(order["id"])["state"] == "running"
    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert flow.path(instance_id)[-1] == "end_released"
    assert_execution_requested(flow, order, instance_id)
    [signature] = [s for s in flow.list_signatures(instance_id) if s["meaning"] == "Released"]
    assert signature["username"] == "sam"


def test_the_erp_and_the_mes_reach_the_process_through_the_rest_api(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people):
    """The ERP announces the order and the MES acknowledges it with POST /api/v1/messages."""
    from webapp import create_app

    flow = make_flow()
    control(mes, acknowledge=False)
    client = create_app({"TESTING": True, "SECRET_KEY": "test-secret"}, engine=flow.current).test_client()
    # the ERP/MES service account (order_ready: integration or planner; mes_ack: integration)
    token = client.post("/api/v1/tokens", json={"username": "erp", "password": PASSWORD}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    order = tryton.create_order(10)

    started = client.post("/api/v1/messages", headers=headers, json={
        "name": "order_ready", "correlation_keys": {"business_key": order["number"]},
        "payload": {"order_id": order["number"]}})
    assert started.status_code == 200 and started.json["status"] == "matched", started.json
    instance_id = started.json["instance_id"]
    flow.run_jobs()
    release(flow, people, instance_id)
    assert flow.status(instance_id) == InstanceStatus.WAITING  # for the MES

    acked = client.post("/api/v1/messages", headers=headers, json={
        "name": "mes_ack", "correlation_keys": {"business_key": order["number"]},
        "payload": {"accepted": True}})
    assert acked.json == {"status": "matched", "instance_id": instance_id}
    flow.run_jobs()
    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert tryton.read_order(order["id"])["state"] == "running"


# -- exception paths -----------------------------------------------------------------------------------------
def test_uncalibrated_equipment_is_an_exception_the_planner_overrides_with_a_signed_reason(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people):
    flow = make_flow(press_calibration_due=TODAY)  # due before the planned end
    order = tryton.create_order(10)
    instance_id = announce(flow, order)
    variables = flow.variables(instance_id)
    assert variables["readiness"] == "exception" and variables["failed_check"] == "equipment"
    assert variables["findings"] == [f"No equipment of class TABLET_PRESS is available, clean and calibrated "
                                     f"past {order_dates(tryton, order)[1]}."]
    assert flow.open_elements(people["paula"], instance_id) == ["handle_exception"]

    complete(flow, people["paula"], instance_id, "handle_exception",
             {"exception_action": "override", "exception_note": "calibration booked for tomorrow morning"})
    with pytest.raises(GmpflowError, match="must be signed"):  # the override must be signed
        flow.complete_task(people["paula"], flow.task(people["paula"], instance_id, "sign_override").id,
                           {"override_reason": "calibration is done before compression starts"})
    complete(flow, people["paula"], instance_id, "sign_override",
             {"override_reason": "calibration is done before compression starts"}, "Approved")
    release(flow, people, instance_id)

    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert [s["meaning"] for s in flow.list_signatures(instance_id)] == ["Approved", "Released"]
    assert len(schedules_of(mes, order["number"])) == 1
    assert tryton.read_order(order["id"])["state"] == "running"
    # the model flags the signed override (exception.fact): the batch's review by exception shows it
    with flow.current.db.read() as session:
        assert batch_flags.order_instance_ids(session, order["number"]) == [instance_id]
        flagged = batch_flags.flagged(session, flow.current.runtime, [instance_id], {})
    [override] = flagged["overrides"]
    assert (override["by"], override["task"], override["step"]) == ("paula", "sign_override", None)
    assert ("the order was released although its checks failed: calibration is done before compression "
            "starts") in override["text"]


def test_an_expired_qualification_is_fixed_in_master_data_and_the_order_checked_again(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people, clock):
    flow = make_flow(compression_valid_until=TODAY)  # expires before the planned end
    order = tryton.create_order(10)
    instance_id = announce(flow, order)
    variables = flow.variables(instance_id)
    assert variables["failed_check"] == "personnel"
    assert "compression" in variables["findings"][0]

    clock.advance(minutes=5)
    new_version(flow.current, "personnel_qualification", "oscar.compression",
                qualification("oscar", "compression", TODAY + timedelta(days=400)))
    complete(flow, people["paula"], instance_id, "handle_exception",
             {"exception_action": "recheck", "exception_note": "Oscar's compression training renewed"})

    assert flow.variables(instance_id)["readiness"] == "ready"
    assert flow.open_elements(people["sam"], instance_id) == ["release"]
    assert flow.path(instance_id).count("fetch_order") == 2


def test_missing_material_is_rechecked_once_the_stock_is_received(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people):
    flow = make_flow()
    order = tryton.create_order(20_000)  # needs 40,000 API: far more than the stock
    instance_id = announce(flow, order)
    variables = flow.variables(instance_id)
    assert variables["failed_check"] == "materials" and variables["materials_ok"] is False
    assert tryton.read_order(order["id"])["state"] == "waiting"

    complete(flow, people["paula"], instance_id, "handle_exception",
             {"exception_action": "recheck", "exception_note": "checked again without a fix"})
    assert flow.open_elements(people["paula"], instance_id) == ["handle_exception"]  # still short

    receive_stock(tryton, 50_000, 70_000)
    complete(flow, people["paula"], instance_id, "handle_exception",
             {"exception_action": "recheck", "exception_note": "materials received"})
    assert flow.variables(instance_id)["readiness"] == "ready"
    assert tryton.read_order(order["id"])["state"] == "assigned"
    release(flow, people, instance_id)
    assert flow.status(instance_id) == InstanceStatus.COMPLETED


def test_a_wrong_recipe_version_is_an_exception_and_rejecting_cancels_the_order_in_tryton(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people):
    flow = make_flow()
    order = tryton.create_order(10)
    instance_id = announce(flow, order, recipe_version=2)  # version 1 is in force
    variables = flow.variables(instance_id)
    assert variables["failed_check"] == "versions"
    assert variables["findings"] == ["recipe: the order names version 2 but version 1 is effective."]

    complete(flow, people["paula"], instance_id, "handle_exception",
             {"exception_action": "reject", "exception_note": "the ERP must plan with recipe v1"})

    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert flow.path(instance_id)[-1] == "end_rejected"
    assert tryton.read_order(order["id"])["state"] == "cancelled"
    assert schedules_of(mes, order["number"]) == []


def test_a_bom_version_other_than_the_effective_one_is_an_exception(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people, clock):
    flow = make_flow()
    clock.advance(minutes=1)
    new_version(flow.current, "bom", "BOM-TAB-100", {"product": "TAB-100", "lines": [
        {"material": "API-001", "quantity": 2.1, "unit": "u", "tolerance_percent": 1}]})
    order = tryton.create_order(10)  # Tryton's BoM is named "... BoM v1"
    instance_id = announce(flow, order)
    assert flow.variables(instance_id)["findings"] == [
        "bom: the order names version 1 but version 2 is effective."]


def test_the_mes_never_acknowledges_and_a_supervisor_is_asked_after_the_configured_time(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people, clock):
    flow = make_flow()
    control(mes, acknowledge=False)
    order = tryton.create_order(10)
    instance_id = announce(flow, order, mes_ack_timeout="PT2H")
    release(flow, people, instance_id)
    assert flow.variables(instance_id)["mes_schedule"]["acknowledged"] is False
    assert flow.open_elements(people["sam"], instance_id) == []

    clock.advance(hours=1, minutes=59)
    flow.run_jobs()
    assert flow.open_elements(people["sam"], instance_id) == []
    clock.advance(minutes=2)
    flow.run_jobs()
    assert flow.open_elements(people["sam"], instance_id) == ["escalate_ack"]

    complete(flow, people["sam"], instance_id, "escalate_ack",
             {"escalation_outcome": "confirmed", "escalation_note": "the shop floor sees the order"})
    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert tryton.read_order(order["id"])["state"] == "running"


def test_the_default_wait_for_the_mes_is_four_hours_and_the_ack_message_continues(
        make_flow, tryton: TrytonServer, mes: RunningSimulator, people, clock):
    flow = make_flow()
    control(mes, acknowledge=False)
    order = tryton.create_order(10)
    instance_id = announce(flow, order)
    assert flow.variables(instance_id)["mes_ack_timeout"] == "PT4H"
    release(flow, people, instance_id)
    clock.advance(hours=3, minutes=59)
    flow.run_jobs()
    assert flow.open_elements(people["sam"], instance_id) == []

    result = flow.correlate(ADMIN, "mes_ack", {"business_key": order["number"]}, {"accepted": True})
    assert result == {"status": "matched", "instance_id": instance_id}
    flow.run_jobs()
    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert "mes_ack_received" in flow.path(instance_id)
    assert_execution_requested(flow, order, instance_id)


def test_the_erp_down_is_retried_then_an_incident_and_an_admin_retry_finishes_without_a_duplicate_in_the_mes(
        database, clock, reload, mes: RunningSimulator, people, monkeypatch):
    registry = build_registry({"GMPFLOW_MES_URL": mes.url, "GMPFLOW_ERP": "simulator",
                               "GMPFLOW_ERP_URL": mes.url})
    flow = build(database, clock, registry, reload, monkeypatch)
    number = f"SIM-{uuid.uuid4().hex[:8]}"  # the simulator lives for the module: a number of its own
    start = TODAY + timedelta(days=1)
    mes.counterpart.add_order(number, "TAB-100", 10, planned_start_date=start.isoformat(),
                              planned_date=(start + timedelta(days=1)).isoformat(),
                              bom="Paracetamol 500 mg, BoM v1",
                              inputs=[{"product": "API-001", "quantity": 20, "unit": "u"}])
    control(mes, acknowledge=False)
    order = {"number": number}
    instance_id = announce(flow, order)
    release(flow, people, instance_id)
    assert len(schedules_of(mes, number)) == 1

    control(mes, fail_next=3)  # the ERP answers 503 three times: every attempt fails
    flow.correlate(ADMIN, "mes_ack", {"business_key": number}, {"accepted": True})
    flow.run_jobs()
    for seconds in (10, 20):  # the model's backoff: 10 s, then 20 s
        clock.advance(seconds=seconds)
        flow.run_jobs()
    [incident] = flow.list_incidents()
    assert incident.instance_id == instance_id and incident.attempts == 3
    assert flow.status(instance_id) == InstanceStatus.FAILED
    assert mes.counterpart.orders[number]["state"] == "assigned"

    flow.retry_incident(people["ada"].actor, incident.id, "the ERP is back")
    flow.run_jobs()
    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert mes.counterpart.orders[number]["state"] == "running"
    assert len(schedules_of(mes, number)) == 1  # no duplicate order in the MES


# -- helpers that touch Tryton -------------------------------------------------------------------------------
def order_dates(tryton: TrytonServer, order: dict[str, Any]) -> tuple[str, str]:
    row = tryton.client.model("production", "read", [order["id"]], ["planned_start_date", "planned_date"])[0]
    as_iso = [date(v["year"], v["month"], v["day"]).isoformat()
              for v in (row["planned_start_date"], row["planned_date"])]
    return as_iso[0], as_iso[1]


def receive_stock(tryton: TrytonServer, api: float, excipient: float) -> None:
    ids = tryton.ids
    moves = [tryton.client.model("stock.move", "create", [{
        "product": product, "unit": ids["unit"], "quantity": quantity, "from_location": ids["supplier"],
        "to_location": ids["storage"], "company": ids["company"], "unit_price": "1",
        "currency": ids["currency"]}])[0]
        for product, quantity in ((ids["api"], api), (ids["excipient"], excipient))]
    tryton.client.model("stock.move", "do", moves)
