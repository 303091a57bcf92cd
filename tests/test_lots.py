"""Material lots (gmp.lots, processes/lot_disposition, /api/v1/lots): received in quarantine, released or
rejected only through the lot_disposition model with a QA signature, expired by date, checked and consumed at
the point of use."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.audit import Actor
from engine.clock import FrozenClock
from engine.errors import EntryRefused, PermissionDenied
from engine.operations import CallContext
from engine.services import Gmpflow
from engine.store.models import AuditEvent
from gmp import lots
from gmp.services import GmpServices
from gmp.tables import Lot
from tests.api_support import PASSWORD, Api, body
from tests.conftest import ADMIN, ROOT
from tests.hostile_support import snapshot

TODAY = date(2026, 1, 5)  # FrozenClock's start
NEXT_YEAR = (TODAY + timedelta(days=365)).isoformat()
GOOD = {"lot_id": "PARA-001", "material": "MAT-PARACETAMOL", "quantity": 25, "uom": "kg", "expiry": NEXT_YEAR,
        "supplier_lot": "ACME-1"}
STEP = {"MAT-PARACETAMOL": (0.5, 5.0), "MAT-LACTOSE": (0.15, 5.0)}
OPERATOR = Actor("olivia", "Olivia Operator")


@pytest.fixture
def disposition(engine: Gmpflow, deploy: Any) -> Any:
    return deploy(ROOT / "gmp" / "processes" / "lot_disposition")


def receive(api: Api, as_: str = "erin", **changes: Any) -> Any:
    return api.post("/api/v1/lots", as_=as_, json={**GOOD, **changes})


def decide(api: Api, engine: Gmpflow, lot_id: str, decision: str, meaning: str, as_: str = "quinn") -> Any:
    instance_id = body(api.get(f"/api/v1/lots/{lot_id}", as_=as_))["disposition_instance_id"]
    [task] = body(api.get(f"/api/v1/tasks?instance_id={instance_id}", as_=as_))
    response = api.post(f"/api/v1/tasks/{task['id']}/complete", as_=as_, json={
        "data": {"lot_decision": decision, "lot_decision_reason": "CoA and identity test conform"},
        "signature": {"username": as_, "password": PASSWORD, "meaning": meaning}})
    engine.run_jobs_once()
    return response


def lot_rows(engine: Gmpflow) -> list[tuple[Any, ...]]:
    with engine.db.read() as session:
        return [(lot.lot_id, lot.status, lot.available) for lot in session.scalars(select(Lot))]


# -- receiving a lot -------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["erin", "quinn", "ada", "sam"])  # integration, qa, admin, supervisor
def test_a_lot_is_received_in_quarantine_and_its_disposition_starts_with_it(
        api: Api, engine: Gmpflow, disposition: Any, who: str) -> None:
    response = receive(api, as_=who)
    assert response.status_code == 201, response.json
    lot = body(response)
    assert (lot["status"], lot["available"], lot["quantity"]) == ("quarantine", 25.0, 25.0)
    instance = body(api.get(f"/api/v1/instances/{lot['disposition_instance_id']}", as_="quinn"))
    assert (instance["process_key"], instance["business_key"]) == ("lot_disposition", "PARA-001")
    assert instance["initiator"] == "system"  # the engine's identity started it
    with engine.db.read() as session:
        created = session.scalar(select(AuditEvent).where(AuditEvent.action == "lot.created"))
    assert created is not None and created.actor_id == who and created.object_id == "PARA-001"


@pytest.mark.parametrize("who", ["olivia", "paula"])  # operator, planner
def test_only_the_receiving_roles_may_create_a_lot(api: Api, engine: Gmpflow, disposition: Any,
                                                   who: str) -> None:
    api.token(who)
    before = lot_rows(engine)
    response = receive(api, as_=who)
    assert (response.status_code, body(response)["code"]) == (403, "not_permitted")
    assert lot_rows(engine) == before == []
    with engine.db.read() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (last.action, last.actor_id) == ("lot.create_refused", who)  # the refusal is in the trail


BAD = [
    ({"quantity": 0}, "lot_invalid", "quantity"),
    ({"quantity": -3}, "lot_invalid", "quantity"),
    ({"quantity": "lots"}, "lot_invalid", "quantity"),
    ({"quantity": True}, "lot_invalid", "quantity"),
    ({"expiry": "next year"}, "lot_invalid", "expiry"),
    ({"expiry": "2026-02-30"}, "lot_invalid", "expiry"),
    ({"expiry": None}, "lot_invalid", "expiry"),
    ({"lot_id": "../etc"}, "lot_invalid", "lot_id"),
    ({"lot_id": ""}, "lot_invalid", "lot_id"),
    ({"material": ""}, "lot_invalid", "material"),
    ({"uom": 7}, "lot_invalid", "uom"),
    ({"retest": "01/01/2027"}, "lot_invalid", "retest"),
    ({"status": "released"}, "undeclared_field", "status"),
    ({"available": 1000}, "undeclared_field", "available"),
]


@pytest.mark.parametrize("changes,code,field", BAD)
def test_bad_lot_data_is_refused_per_field_and_nothing_is_stored(api: Api, engine: Gmpflow, disposition: Any,
                                                                changes: dict[str, Any], code: str,
                                                                field: str) -> None:
    api.token("erin")
    before = snapshot(engine.db)
    response = receive(api, **changes)
    problem = body(response)
    assert (response.status_code, problem["code"]) == (422, code)
    assert field in problem["errors"]
    assert snapshot(engine.db) == before


def test_a_known_lot_id_is_a_conflict_and_changes_nothing(api: Api, engine: Gmpflow,
                                                          disposition: Any) -> None:
    assert receive(api).status_code == 201
    before = snapshot(engine.db)
    response = receive(api, quantity=99)
    assert (response.status_code, body(response)["code"]) == (409, "lot_exists")
    assert snapshot(engine.db) == before
    assert lot_rows(engine) == [("PARA-001", "quarantine", 25.0)]


def test_lots_are_listed_by_material_and_status(api: Api, engine: Gmpflow, disposition: Any) -> None:
    receive(api)
    receive(api, lot_id="LAC-001", material="MAT-LACTOSE")
    engine.pack(GmpServices).create_lot(ADMIN, {**GOOD, "lot_id": "PARA-OLD", "expiry": "2025-12-31"},
                                        released_by_init=True)
    listed = lambda query: [lot["lot_id"] for lot in body(api.get(f"/api/v1/lots{query}", as_="olivia"))]  # noqa
    assert listed("") == ["LAC-001", "PARA-001", "PARA-OLD"]
    assert listed("?material=MAT-PARACETAMOL") == ["PARA-001", "PARA-OLD"]
    assert listed("?status=quarantine") == ["LAC-001", "PARA-001"]
    assert listed("?status=expired") == ["PARA-OLD"]
    assert listed("?status=released") == []
    bad = api.get("/api/v1/lots?status=approved", as_="olivia")
    assert (bad.status_code, body(bad)["code"]) == (400, "bad_filter")


def test_an_unknown_lot_is_not_found(api: Api, disposition: Any) -> None:
    response = api.get("/api/v1/lots/NOPE", as_="olivia")
    assert (response.status_code, body(response)["code"]) == (404, "lot_not_found")


# -- the disposition, through the model only -------------------------------------------------------
@pytest.mark.parametrize("decision,meaning", [("released", "Released"), ("rejected", "Rejected")])
def test_qa_dispositions_a_lot_through_the_model_with_a_signature(api: Api, engine: Gmpflow, disposition: Any,
                                                                  decision: str, meaning: str) -> None:
    receive(api)
    assert decide(api, engine, "PARA-001", decision, meaning).status_code == 200
    lot = body(api.get("/api/v1/lots/PARA-001", as_="olivia"))
    assert lot["status"] == decision
    created, changed = lot["history"]
    assert created["kind"] == "created" and created["to_status"] == "quarantine"
    assert (changed["kind"], changed["from_status"], changed["to_status"], changed["by"]) == (
        "status", "quarantine", decision, "quinn")
    assert changed["reason"] == "CoA and identity test conform"
    assert changed["instance_id"] == lot["disposition_instance_id"]
    signatures = api.get(f"/api/v1/signatures?instance_id={lot['disposition_instance_id']}", as_="quinn")
    [signature] = body(signatures)
    assert signature["meaning"] == meaning


def test_the_signature_must_carry_the_meaning_of_the_decision(api: Api, engine: Gmpflow,
                                                              disposition: Any) -> None:
    receive(api)
    api.token("quinn")  # issued before the snapshot
    before = snapshot(engine.db)
    response = decide(api, engine, "PARA-001", "released", "Rejected")
    assert (response.status_code, body(response)["code"]) == (400, "guard_failed")
    assert snapshot(engine.db) == before
    assert lot_rows(engine) == [("PARA-001", "quarantine", 25.0)]


def test_an_operator_cannot_disposition_a_lot(api: Api, engine: Gmpflow, disposition: Any) -> None:
    receive(api)
    instance_id = body(api.get("/api/v1/lots/PARA-001", as_="olivia"))["disposition_instance_id"]
    [task] = body(api.get(f"/api/v1/tasks?instance_id={instance_id}", as_="quinn"))
    response = api.post(f"/api/v1/tasks/{task['id']}/complete", as_="olivia", json={
        "data": {"lot_decision": "released", "lot_decision_reason": "mine"},
        "signature": {"username": "olivia", "password": PASSWORD, "meaning": "Released"}})
    assert (response.status_code, body(response)["code"]) == (403, "role_required")  # the qa lane
    assert lot_rows(engine) == [("PARA-001", "quarantine", 25.0)]


def test_there_is_no_route_that_sets_a_status(api: Api, disposition: Any) -> None:
    receive(api)
    for method, path in [("POST", "/api/v1/lots/PARA-001/status"), ("PUT", "/api/v1/lots/PARA-001"),
                         ("PATCH", "/api/v1/lots/PARA-001"), ("POST", "/api/v1/lots/PARA-001/release")]:
        assert api.call(method, path, as_="ada", json={"status": "released"}).status_code in (404, 405)
    assert not [p for p in api.spec["paths"] if "/lots" in p and "status" in p]
    assert set(api.spec["paths"]["/api/v1/lots/{lot_id}"]) - {"parameters"} == {"get"}


def test_a_disposition_started_by_hand_cannot_change_a_lot(api: Api, engine: Gmpflow,
                                                           disposition: Any) -> None:
    """An admin may start the model (start.roles), but lot.set_status acts only for the instance that the
    lot's creation started: a stray instance's call is refused, the lot unchanged."""
    receive(api)
    stray = api.post("/api/v1/process-definitions/lot_disposition/instances", as_="ada",
                     json={"business_key": "PARA-001", "variables": {}})
    assert stray.status_code == 201, stray.json
    with pytest.raises(PermissionDenied) as refused:
        lots.set_status(engine, {"lot_id": "PARA-001", "status": "released"},
                        CallContext("g", body(stray)["id"], 1))
    assert refused.value.code == "not_permitted"
    assert lot_rows(engine) == [("PARA-001", "quarantine", 25.0)]


def test_lint_refuses_lot_set_status_in_any_other_process(engine: Gmpflow, tmp_path: Any) -> None:
    text = (ROOT / "gmp" / "processes" / "lot_disposition" / "lot_disposition.bpmn").read_text()
    text = text.replace('id="lot_disposition"', 'id="sneaky_release"')
    (tmp_path / "other.bpmn").write_text(text.replace('processRef="lot_disposition"',
                                                      'processRef="sneaky_release"'))
    form = ROOT / "gmp" / "forms" / "lot_disposition.form"
    (tmp_path / "lot_disposition.form").write_text(form.read_text())
    problems = engine.lint([tmp_path])
    assert any("lot.set_status" in p.message and "lot_disposition" in p.message for p in problems), problems


def test_a_released_lot_reads_expired_from_the_day_after_its_expiry(
        api: Api, engine: Gmpflow, clock: FrozenClock, disposition: Any) -> None:
    receive(api, expiry=(TODAY + timedelta(days=2)).isoformat())
    decide(api, engine, "PARA-001", "released", "Released")
    clock.advance(days=2)
    api.tokens.clear()  # tokens last hours, not days
    assert body(api.get("/api/v1/lots/PARA-001", as_="olivia"))["status"] == "released"  # the last day of use
    clock.advance(days=1)
    api.tokens.clear()
    assert body(api.get("/api/v1/lots/PARA-001", as_="olivia"))["status"] == "expired"
    assert lot_rows(engine) == [("PARA-001", "released", 25.0)]  # derived when read, never stored


# -- the point of use ------------------------------------------------------------------------------
@pytest.fixture
def stock(engine: Gmpflow, disposition: Any) -> None:
    """A released paracetamol lot of 1 kg, an expired one, a quarantined and a rejected one."""
    released = {**GOOD, "quantity": 1.0}
    gmp = engine.pack(GmpServices)
    gmp.create_lot(ADMIN, {**released, "lot_id": "OK"}, released_by_init=True)
    gmp.create_lot(ADMIN, {**released, "lot_id": "OLD", "expiry": (TODAY - timedelta(days=1)).isoformat()},
                   released_by_init=True)
    gmp.create_lot(ADMIN, {**released, "lot_id": "NEW"})
    gmp.create_lot(ADMIN, {**released, "lot_id": "LAC", "material": "MAT-LACTOSE"}, released_by_init=True)


def use(engine: Gmpflow, lot_id: str = "OK", material: str = "MAT-PARACETAMOL", quantity: float = 0.5,
        uom: str = "kg") -> lots.Use:
    return lots.Use(lot_id, material, quantity, uom, engine.clock.now(), STEP)


REFUSED = [
    (dict(lot_id="NOPE"), "lot_unknown", "lot_id"),
    (dict(lot_id="NEW"), "lot_not_released", "lot_id"),
    (dict(lot_id="OLD"), "lot_expired", "lot_id"),
    (dict(lot_id="LAC"), "lot_material_mismatch", "lot_id"),
    (dict(lot_id="OK", uom="g", quantity=500), "uom_mismatch", "uom"),
    (dict(quantity=0.53), "quantity_out_of_tolerance", "quantity"),
    (dict(quantity=10.0), "quantity_out_of_tolerance", "quantity"),
    (dict(quantity=0.47), "quantity_out_of_tolerance", "quantity"),
]


@pytest.mark.parametrize("changes,code,field", REFUSED)
def test_a_consumption_is_refused_naming_the_reason_and_nothing_changes(engine: Gmpflow, stock: None,
                                                                        changes: dict[str, Any], code: str,
                                                                        field: str) -> None:
    before = lot_rows(engine)
    with pytest.raises(EntryRefused) as refused:
        engine.pack(GmpServices).consume_lot(OPERATOR, use(engine, **changes), batch_id="B-1", instance_id=7,
                                             step=1)
    assert (refused.value.code, list(refused.value.context["errors"])) == (code, [field])
    assert lot_rows(engine) == before
    with engine.db.read() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (last.action, last.actor_id, last.after["code"]) == ("lot.consumption_refused", "olivia", code)


def test_a_material_not_in_the_steps_recipe_materials_is_refused(engine: Gmpflow, stock: None) -> None:
    with pytest.raises(EntryRefused) as refused:
        engine.pack(GmpServices).consume_lot(OPERATOR, lots.Use("OK", "MAT-PARACETAMOL", 0.5, "kg",
                                                                engine.clock.now(),
                                                                {"MAT-LACTOSE": (0.15, 5.0)}))
    assert refused.value.code == "material_not_in_step"


def test_a_lot_expired_at_the_time_of_use_is_refused_though_it_was_good_when_received(
        engine: Gmpflow, clock: FrozenClock, stock: None) -> None:
    engine.pack(GmpServices).consume_lot(OPERATOR, use(engine, quantity=0.5))  # good on the day of receipt
    clock.advance(days=366)
    with pytest.raises(EntryRefused) as refused:
        engine.pack(GmpServices).consume_lot(OPERATOR, use(engine))
    assert refused.value.code == "lot_expired"


def test_consumption_reduces_availability_records_it_and_cannot_go_below_zero(engine: Gmpflow,
                                                                              stock: None) -> None:
    wide = {"MAT-PARACETAMOL": (0.5, 100.0)}
    now, gmp = engine.clock.now(), engine.pack(GmpServices)
    done = gmp.consume_lot(OPERATOR, lots.Use("OK", "MAT-PARACETAMOL", 0.6, "kg", now, wide),
                           batch_id="B-1", instance_id=7, step=1)
    assert done == {"lot_id": "OK", "consumed": 0.6, "available": 0.4}
    with pytest.raises(EntryRefused) as refused:
        gmp.consume_lot(OPERATOR, lots.Use("OK", "MAT-PARACETAMOL", 0.5, "kg", engine.clock.now(), wide),
                        batch_id="B-1", instance_id=7, step=1)
    assert refused.value.code == "lot_insufficient"
    gmp.consume_lot(OPERATOR, lots.Use("OK", "MAT-PARACETAMOL", 0.4, "kg", engine.clock.now(), wide),
                    batch_id="B-2", instance_id=9, step=1)
    lot = gmp.get_lot("OK")
    assert lot["available"] == 0.0
    consumed = [(e["batch_id"], e["instance_id"], e["step"], e["quantity"], e["by"])
                for e in lot["history"] if e["kind"] == "consumed"]
    assert consumed == [("B-1", 7, 1, 0.6, "olivia"), ("B-2", 9, 1, 0.4, "olivia")]


def test_a_recipe_materials_tolerance_defaults_to_five_percent() -> None:
    step = {"materials": [{"material": "A", "quantity": 2, "unit": "kg"},
                          {"material": "B", "quantity": 1, "unit": "kg", "tolerance_pct": 1}]}
    assert lots.allowed_materials(step) == {"A": (2.0, 5.0), "B": (1.0, 1.0)}


def test_init_demo_brings_released_quarantined_and_expired_lots(engine: Gmpflow, disposition: Any) -> None:
    from gmp import demo

    demo.load_demo_lots(engine, ADMIN)
    assert demo.load_demo_lots(engine, ADMIN) == []  # a second init adds nothing
    statuses = {lot["lot_id"]: lot["status"] for lot in engine.pack(GmpServices).list_lots()}
    assert sorted(statuses.values()) == ["expired", "quarantine", "released", "released"]
    with engine.db.read() as session:
        reasons = {e.object_id: e.reason for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "lot.created"))}
    assert all("stored released by gmpflow init" in (reasons[k] or "")
               for k, s in statuses.items() if s != "quarantine")
    assert engine.verify_audit().ok
