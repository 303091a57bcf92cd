"""Issue 17's scenario through the REST API alone, with only the names of ``shared/DESIGN.md``: the ERP's
demo order (``gmpflow init --demo`` data) is announced and released, the batch runs its SOP steps while the
operator tries an unknown, an expired, a quarantined and an off-recipe lot (each refused: 422 with its code,
nothing consumed) before the good ones, QA releases the batch, and genealogy answers both ways: backward
from the batch's product lot to the material lots, forward from a material lot (a recall) to the product lot.

Between the API calls only the worker runs (``run_jobs_once``, what ``gmpflow worker`` loops on)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from werkzeug.test import TestResponse

from connectors.simulator.demo import start_alongside
from connectors.simulator.server import RunningSimulator
from engine import bootstrap, identity
from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.store import Database
from tests.api_support import Api, body
from tests.test_demo_batch import Demo
from webapp import create_app

ORDER = "MO-DEMO-1001"
PARA, LAC = "MAT-PARACETAMOL", "MAT-LACTOSE"
GOOD = [{"material": PARA, "lot": "PARA-24-001", "quantity": 0.5, "unit": "kg"},
        {"material": LAC, "lot": "LAC-24-001", "quantity": 0.15, "unit": "kg"}]
REFUSED = [  # (what the operator enters in step 1 instead of the paracetamol row, the code)
    ({"material": PARA, "lot": "PARA-99-404", "quantity": 0.5, "unit": "kg"}, "lot_unknown"),
    ({"material": PARA, "lot": "PARA-23-009", "quantity": 0.5, "unit": "kg"}, "lot_expired"),
    ({"material": PARA, "lot": "PARA-24-002", "quantity": 0.5, "unit": "kg"}, "lot_not_released"),
    ({"material": "MAT-TALC", "lot": "TALC-26-001", "quantity": 0.5, "unit": "kg"}, "material_not_in_step"),
]


class DemoApi(Api):
    """The API client of ``tests/api_support`` (every answer checked against the OpenAPI document) for the
    demo's people, who log in with the demo password."""

    def token(self, username: str) -> str:
        if username not in self.tokens:
            reply = self.call("POST", "/api/v1/tokens",
                              json={"username": username, "password": bootstrap.DEMO_PASSWORD})
            assert reply.status_code == 200, reply.json
            self.tokens[username] = body(reply)["token"]
        return self.tokens[username]


class Floor:
    def __init__(self, engine: Gmpflow) -> None:
        app = create_app({"TESTING": True, "SECRET_KEY": "rest-lot-scenario"}, engine=engine)
        self.engine, self.api = engine, DemoApi(app, app.test_client())

    def ok(self, reply: TestResponse, status: int = 200) -> Any:
        assert reply.status_code == status, (reply.status_code, reply.get_json(silent=True))
        while self.engine.run_jobs_once():  # the worker, between requests
            pass
        return body(reply) if reply.is_json else reply.data

    def get(self, who: str, path: str) -> Any:
        return self.ok(self.api.get(f"/api/v1{path}", as_=who))

    def instance(self, who: str, key: str, business_key: str) -> dict[str, Any]:
        [found] = self.get(who, f"/instances?key={key}&business_key={business_key}")["items"]
        return found  # type: ignore[no-any-return]

    def task(self, who: str, instance_id: int, element_id: str) -> dict[str, Any]:
        listed = self.get(who, f"/tasks?instance_id={instance_id}")
        found = [t for t in listed if t["element_id"] == element_id and t["state"] in ("open", "claimed")]
        assert len(found) == 1, (who, element_id, [(t["element_id"], t["state"]) for t in listed])
        return found[0]  # type: ignore[no-any-return]

    def complete(self, who: str, instance_id: int, element_id: str, data: dict[str, Any], meaning: str,
                 status: int = 200) -> Any:
        """Claim the task (if nobody has), read it, and complete it signed; a signature that covers a record
        sends back the hash of the record as the task showed it."""
        task = self.task(who, instance_id, element_id)
        if task["assignee"] is None:
            self.ok(self.api.post(f"/api/v1/tasks/{task['id']}/claim", as_=who))
        shown = self.get(who, f"/tasks/{task['id']}")
        signature = {"username": who, "password": bootstrap.DEMO_PASSWORD, "meaning": meaning}
        if shown.get("signed_record"):
            signature["record_sha256"] = shown["signed_record"]["sha256"]
        return self.ok(self.api.post(f"/api/v1/tasks/{task['id']}/complete", as_=who,
                                     json={"data": data, "signature": signature}), status)


@pytest.fixture
def floor(database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Floor]:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    monkeypatch.setenv("GMPFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
    now = datetime.now(timezone.utc).replace(hour=8, minute=0, second=0, microsecond=0)
    environ: dict[str, str] = {"GMPFLOW_SIMULATOR_PORT": "0"}
    simulator: RunningSimulator | None = start_alongside(environ, today=now.date())
    assert simulator is not None
    demo = Demo(database, FrozenClock(now), environ)
    demo.init()  # what `gmpflow init --demo` does
    yield Floor(demo.engine)
    simulator.stop()


def test_the_demo_order_runs_through_rest_refusing_each_bad_lot_and_genealogy_answers_both_ways(
        floor: Floor) -> None:
    # a lot of a material no step of the recipe uses, received by QA (it waits in quarantine)
    floor.ok(floor.api.post("/api/v1/lots", as_="quinn", json={
        "lot_id": "TALC-26-001", "material": "MAT-TALC", "quantity": 5, "uom": "kg", "expiry": "2099-12-31"}),
        201)
    announced = floor.ok(floor.api.post("/api/v1/messages", as_="paula", json={
        "name": "order_ready", "correlation_keys": {"business_key": ORDER}, "payload": {"order_id": ORDER}}))
    order_release = int(announced["instance_id"])
    floor.complete("sam", order_release, "release", {"release_comment": "master data checked"}, "Released")
    batch_id = floor.get("sam", f"/instances/{order_release}")["variables"]["batch_id"]
    batch = floor.instance("quinn", "sop_execution", batch_id)["id"]
    step1 = floor.instance("quinn", "sop_step", f"{batch_id}/00001")["id"]

    lots_before = {lot["lot_id"]: lot["available"] for lot in floor.get("quinn", "/lots")}
    for bad_row, code in REFUSED:
        reply = floor.complete("olivia", step1, "perform", {
            "values": [{"name": "paracetamol weight", "value": 0.5}], "equipment_id": None,
            "materials_used": [bad_row, GOOD[1]]}, "Performed", status=422)
        assert reply["code"] == code, reply
        assert list(reply["errors"]) == ["materials_used.0.lot" if code.startswith("lot_")
                                         else "materials_used.0.material"]
    assert {lot["lot_id"]: lot["available"] for lot in floor.get("quinn", "/lots")} == lots_before
    assert floor.get("quinn", "/lots/PARA-24-002")["status"] == "quarantine"
    assert floor.get("quinn", "/lots/PARA-23-009")["status"] == "expired"

    floor.complete("olivia", step1, "perform", {"values": [{"name": "paracetamol weight", "value": 0.5}],
                                                "equipment_id": None, "materials_used": GOOD}, "Performed")
    assert floor.get("quinn", "/lots/PARA-24-001")["available"] == pytest.approx(24.5)
    step2 = floor.instance("quinn", "sop_step", f"{batch_id}/00002")["id"]
    floor.complete("olivia", step2, "perform", {
        "values": [{"name": "impeller speed", "value": 200}, {"name": "granulate moisture", "value": 2.0}],
        "equipment_id": "EQ-GRAN-01", "materials_used": []}, "Performed")
    floor.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    step3 = floor.instance("quinn", "sop_step", f"{batch_id}/00003")["id"]
    floor.complete("oscar", step3, "perform", {"values": [{"name": "tablet weight", "value": 650}],
                                               "equipment_id": "EQ-PRESS-02", "materials_used": []},
                   "Performed")
    floor.complete("olivia", batch, "record_yield", {"produced_quantity": 1000}, "Performed")

    release = floor.instance("quinn", "batch_release", batch_id)["id"]
    floor.complete("quinn", release, "review_record", {"record_reviewed": True, "review_comment": "complete"},
                   "Reviewed")
    floor.complete("quinn", release, "review_audit_trail", {"audit_trail_reviewed": True}, "Reviewed")
    floor.complete("quinn", release, "decide",
                   {"disposition": "released", "decision_reason": "record complete"}, "Released")
    assert floor.instance("quinn", "batch_release", batch_id)["status"] == "completed"

    # the product lot: released with the batch; genealogy backward to the material lots, forward (recall)
    [product_lot] = [lot for lot in floor.get("quinn", "/lots?material=PRD-PARA-500")]
    assert product_lot["status"] == "released"
    backward = floor.get("quinn", f"/genealogy/{product_lot['lot_id']}?direction=backward")
    assert backward["root"] == product_lot["lot_id"]
    assert {(n["kind"], n["id"]) for n in backward["nodes"]} == {
        ("lot", product_lot["lot_id"]), ("batch", batch_id), ("lot", "PARA-24-001"), ("lot", "LAC-24-001")}
    forward = floor.get("quinn", "/genealogy/PARA-24-001?direction=forward")
    assert {(n["kind"], n["id"]) for n in forward["nodes"]} == {
        ("lot", "PARA-24-001"), ("batch", batch_id), ("lot", product_lot["lot_id"])}
    consumed = {(e["from"], e["to"]): (e["quantity"], e["uom"]) for e in forward["edges"]}
    assert consumed[("PARA-24-001", batch_id)] == (0.5, "kg")
    for refused_lot in ("PARA-23-009", "PARA-24-002", "TALC-26-001"):  # refused: in no batch's genealogy
        assert [n["id"] for n in floor.get("quinn", f"/genealogy/{refused_lot}?direction=forward")["nodes"]] \
            == [refused_lot]
