"""From an order in a real Tryton to the lot's disposition in Tryton, through the REST API as each person and
the ERP would use it: the ERP announces the order (POST /messages); the supervisor releases it; operators
run the SOP version released with it, with one value corrected at entry and one out of limits (a deviation
opened, assessed by the supervisor, later closed by QA) and the critical step witnessed; production goes to
Tryton and to the MES (ProcessOperationsPerformance, once); QA sees exactly those exceptions first, reviews
the record and its audit trail, closes the deviation and releases; the disposition reaches the lot in Tryton
and the MES (SyncMaterialLot); the batch record's JSON and PDF copies carry the same facts; the audit trail
verifies through the API and with ``gmpflow audit verify``.

Between the API calls only the worker runs (``run_jobs_once``, what ``gmpflow worker`` loops on). With
``reload`` every request meets a new app on a new engine (a web server restarted between requests)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader

from connectors.b2mml import messages as m
from connectors.plugins import build_registry
from connectors.simulator.server import RunningSimulator, serve
from connectors.tryton.operations import TrytonProduction
from gmp.processes.order_release.test_order_release import ReleaseEngine, build, new_version
from gmp.product_lots import lot_id_of
from gmp.services import GmpServices
from tests.b2mml_schema import assert_valid
from tests.batch_support import PASSWORD, PROCESSES
from tests.conftest import ADMIN
from tests.tryton_server import TrytonServer
from webapp import create_app

pytestmark = pytest.mark.tryton

STAFF = {"olivia": ["operator"], "oscar": ["operator"], "quinn": ["qa"]}  # besides paula, sam and ada
SOP_WITH_LIMITS = {"product": "TAB-100", "description": "Paracetamol tablets", "steps": [
    {"number": 1, "instruction": "Granulate with purified water.", "required_equipment_class": "GRANULATOR",
     "required_qualification": "granulation",
     "parameters": [{"name": "moisture", "unit": "%", "target": 2.0, "low": 1.5, "high": 2.5,
                     "critical": False}],
     "materials": [{"material": "API-001", "quantity": 20, "unit": "u"},
                   {"material": "EXC-002", "quantity": 30, "unit": "u"}]},
    {"number": 2, "instruction": "Compress to tablets.", "required_equipment_class": "TABLET_PRESS",
     "required_qualification": "compression",
     "parameters": [{"name": "tablet weight", "unit": "mg", "target": 650, "low": 630, "high": 670,
                     "critical": True}]}]}
CAPA = {"closure": "close", "root_cause": "press cam worn", "capa_ref": "CAPA-2026-031"}


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    running = serve()
    yield running
    running.stop()


class Api:
    """The REST API as one person (their bearer token); ``reload``: a new app and engine per request."""

    def __init__(self, flow: ReleaseEngine, username: str) -> None:
        self.flow, self.username = flow, username
        reply = self.client().post("/api/v1/tokens", json={"username": username, "password": PASSWORD})
        assert reply.status_code == 200, reply.json
        self.headers = {"Authorization": f"Bearer {reply.json['token']}"}

    def client(self) -> FlaskClient:
        engine = self.flow.restart() if self.flow.reload else self.flow.current
        return create_app({"TESTING": True, "SECRET_KEY": "order-to-disposition"},
                          engine=engine).test_client()

    def get(self, path: str, status: int = 200, **query: Any) -> Any:
        reply = self.client().get(f"/api/v1{path}", headers=self.headers, query_string=query)
        assert reply.status_code == status, (path, reply.status_code, reply.get_json(silent=True))
        return reply.get_json(silent=True) if reply.is_json else reply.data

    def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        reply = self.client().post(f"/api/v1{path}", headers=self.headers, json=body or {})
        assert reply.status_code == status, (path, reply.status_code, reply.get_json(silent=True))
        return reply.get_json()

    def instance(self, key: str, business_key: str) -> dict[str, Any]:
        [found] = self.get("/instances", key=key, business_key=business_key)["items"]
        return found  # type: ignore[no-any-return]

    def task(self, instance_id: int, element_id: str) -> dict[str, Any]:
        [found] = [t for t in self.get("/tasks", instance_id=instance_id) if t["element_id"] == element_id]
        return found  # type: ignore[no-any-return]

    def sign(self, instance_id: int, element_id: str, data: dict[str, Any], meaning: str, status: int = 200,
             claim: bool = True, record: str | None = None) -> Any:
        """Claim the task, then complete it signed with ID, password and meaning; ``record``: the batch whose
        record the signature covers (its ``sha256`` as read now goes with the signature)."""
        task = self.task(instance_id, element_id)
        if claim:
            self.post(f"/tasks/{task['id']}/claim")
        signature = {"username": self.username, "password": PASSWORD, "meaning": meaning}
        if record is not None:
            signature["record_sha256"] = self.get(f"/batches/{record}/record")["sha256"]
        return self.post(f"/tasks/{task['id']}/complete", {"data": data, "signature": signature}, status)


def pdf_text(data: bytes) -> str:
    """The PDF's words, one space apart: a table cell's text wraps to the width of its column."""
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


def received(simulator: RunningSimulator, kind: str) -> list[dict[str, Any]]:
    return [r for r in simulator.counterpart.received if r["kind"] == kind]


def test_an_order_from_tryton_runs_its_sop_through_the_rest_api_and_qa_releases_the_lot_in_tryton(
        database, clock, reload, tryton: TrytonServer, simulator: RunningSimulator, monkeypatch, tmp_path,
        b2mml_schema) -> None:
    monkeypatch.setenv("GMPFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
    registry = build_registry({**tryton.environ, "GMPFLOW_MES_URL": simulator.url})
    # order release, its master data, paula, sam, ada
    flow = build(database, clock, registry, reload, monkeypatch)
    for username, roles in STAFF.items():
        flow.current.add_user(ADMIN, username, f"{username.title()} Example", PASSWORD, roles)
    for path in PROCESSES:
        flow.current.deploy(ADMIN, [path])
    new_version(flow.current, "recipe", "SOP-TAB-100", SOP_WITH_LIMITS)  # in force at the order's start
    expiry = (clock.now() + timedelta(days=365)).date().isoformat()
    for lot_id, material in (("L-API-7", "API-001"), ("L-API-8", "API-001"), ("L-EXC-3", "EXC-002")):
        # released lots at hand, received in the ERP's stock too
        lot = {"lot_id": lot_id, "material": material, "quantity": 100, "uom": "u", "expiry": expiry}
        flow.current.pack(GmpServices).create_lot(ADMIN, lot, released_by_init=True)
        tryton.receive_lot(lot_id, "api" if material == "API-001" else "excipient", 100)
    erp, sam, olivia, oscar, quinn = (Api(flow, name)
                                      for name in ("paula", "sam", "olivia", "oscar", "quinn"))
    work = flow.run_jobs  # the worker, between requests
    for equipment_id in ("EQ-GRAN-01", "EQ-PRESS-01"):  # cleaned by one person, verified by another
        cleaning = olivia.post("/process-definitions/equipment_cleaning/instances",
                               {"business_key": equipment_id, "variables": {"equipment_id": equipment_id}},
                               201)
        olivia.sign(cleaning["id"], "perform_cleaning", {"cleaning_method": "washed, rinsed, dried",
                                                         "cleaned_per_sop": True}, "Performed")
        sam.sign(cleaning["id"], "verify_cleaning", {"visually_clean": True}, "Verified")
        work()

    # the ERP announces a production order; the supervisor releases it
    order = tryton.create_order(10)
    announced = erp.post("/messages", {"name": "order_ready",
                                       "correlation_keys": {"business_key": order["number"]},
                                       "payload": {"order_id": order["number"]}})
    work()
    sam.sign(announced["instance_id"], "release", {"release_comment": "master data checked"}, "Released")
    work()
    assert tryton.read_order(order["id"])["state"] == "running"
    batch_id = sam.get(f"/instances/{announced['instance_id']}")["variables"]["batch_id"]
    batch = sam.instance("sop_execution", batch_id)  # a record reader: the engine started it

    # step 1: a mistyped value, corrected at entry with a reason
    step1 = olivia.instance("sop_step", f"{batch_id}/00001")
    olivia.sign(step1["id"], "perform", {
        "values": [{"name": "moisture", "value": 21}], "equipment_id": "EQ-GRAN-01",
        "materials_used": [{"material": "API-001", "lot": "L-API-7", "quantity": 12, "unit": "u"},
                           {"material": "API-001", "lot": "L-API-8", "quantity": 7, "unit": "u"},
                           {"material": "EXC-002", "lot": "L-EXC-3", "quantity": 30, "unit": "u"}]},
                "Performed")
    work()
    olivia.sign(step1["id"], "confirm_value", {"out_of_limit_action": "correct",
                                               "correction_reason": "typed 21 for 2.1",
                                               "corrected_values": [{"name": "moisture", "value": 2.1}]},
                "Performed")
    work()
    # step 2 (critical): out of limits, confirmed as a deviation, assessed, witnessed by someone else
    step2 = oscar.instance("sop_step", f"{batch_id}/00002")
    oscar.sign(step2["id"], "perform", {"values": [{"name": "tablet weight", "value": 690}],
                                        "equipment_id": "EQ-PRESS-01", "materials_used": []}, "Performed")
    work()
    oscar.sign(step2["id"], "confirm_value", {"out_of_limit_action": "confirm",
                                              "deviation_description": "tablets 20 mg too heavy",
                                              "immediate_action": "press readjusted, 20 tablets rechecked"},
               "Performed")
    work()
    sam.sign(step2["id"], "assess_deviation", {"classification": "minor", "assessment_decision": "continue",
                                               "assessment_comment": "weight within the dissolution spec"},
             "Reviewed")
    work()
    refused = oscar.sign(step2["id"], "verify", {"verified": True}, "Verified", status=403, claim=False)
    assert refused["code"] == "signature_four_eyes"  # the performer cannot witness his own step
    olivia.sign(step2["id"], "verify", {"verified": True}, "Verified")
    work()
    olivia.sign(batch["id"], "record_yield", {"produced_quantity": 10}, "Performed")
    work()
    assert sam.get(f"/instances/{batch['id']}")["status"] == "completed"

    # production reported to the ERP and, once, to the MES
    assert tryton.read_order(order["id"])["state"] == "done"
    # a recall asked of Tryton: which production consumed each lot, how much (stock moves by lot; the
    # session's Tryton may hold other orders that consumed the same lots)
    number = order["number"]
    assert [[c for c in tryton.consumers_of(lot) if c[0] == number]
            for lot in ("L-API-7", "L-API-8", "L-EXC-3")] == [
        [(number, "API-001", 12)], [(number, "API-001", 7)], [(number, "EXC-002", 30)]]
    outputs = tryton.client.model("stock.move", "read", tryton.read_order(order["id"])["outputs"],
                                  ["product.code", "lot.number"])
    assert [(o["product."]["code"], (o.get("lot.") or {}).get("number")) for o in outputs] == [
        ("TAB-100", lot_id_of(batch_id))], "and forward: the lot the order made"
    [performance] = received(simulator, "ProcessOperationsPerformance")
    assert_valid(b2mml_schema, performance["xml"].encode())
    reported = m.parse_performance(performance["xml"])
    assert (reported.order, reported.produced.quantity) == (order["number"], 10)
    assert sorted((c.product, c.lot, c.quantity) for c in reported.consumed) == [
        ("API-001", "L-API-7", 12), ("API-001", "L-API-8", 7), ("EXC-002", "L-EXC-3", 30)]

    # QA: exactly the exceptions first, the record and its audit trail reviewed, the deviation closed
    # the ERP's lot
    tryton.client.model("stock.lot", "create", [{"number": batch_id, "product": tryton.ids["tablet"]}])
    release = quinn.instance("batch_release", batch_id)
    exceptions = quinn.get(f"/instances/{release['id']}")["variables"]["exceptions"]
    assert sorted((e["kind"], e["step"]) for e in exceptions) == [("correction", 1), ("deviation", 2),
                                                                   ("out_of_limit", 2)]
    before = quinn.get(f"/batches/{batch_id}/record")
    assert before["exceptions"] == exceptions and before["audit_trail"]
    # reads need a reason (engine.access): olivia performed and verified steps, so she reads the record;
    # those who took no part are refused (tests/test_read_access.py)
    assert olivia.get(f"/batches/{batch_id}/record")["exceptions"] == exceptions
    quinn.sign(release["id"], "review_record",
               {"record_reviewed": True, "review_comment": "exceptions understood"}, "Reviewed",
               record=batch_id)
    quinn.sign(release["id"], "review_audit_trail", {"audit_trail_reviewed": True}, "Reviewed",
               record=batch_id)
    [deviation] = before["deviations"]
    quinn.sign(release["id"], "close_deviation", {"deviation_id": deviation["id"], **CAPA}, "Approved")
    work()  # the exceptions re-checked (release_exceptions.dmn) now the deviation is closed
    quinn.sign(release["id"], "decide", {"disposition": "released", "decision_reason": "record complete"},
               "Released", record=batch_id)
    work()
    assert quinn.get(f"/instances/{release['id']}")["status"] == "completed"

    # the disposition in Tryton and the MES
    [lot_id] = tryton.client.model("stock.lot", "search", [["number", "=", batch_id]], 0, 1, None)
    assert TrytonProduction(tryton.client).lot_disposition(lot_id) == "released"
    [sync] = received(simulator, "SyncMaterialLot")
    assert_valid(b2mml_schema, sync["xml"].encode())
    assert m.parse_lot_disposition(sync["xml"]).disposition == "released"

    # the batch record: JSON and PDF carry the same facts
    record = quinn.get(f"/batches/{batch_id}/record")
    text = pdf_text(quinn.get(f"/batches/{batch_id}/record.pdf"))
    assert (record["deviations"][0]["state"] == "closed"
            and record["release"]["decision"]["disposition"] == "released")
    [correction] = record["corrections"]
    assert (correction["old_value"], correction["new_value"]) == (21, 2.1)
    facts = [batch_id, order["number"], "SOP-TAB-100", "typed 21 for 2.1", "tablets 20 mg too heavy", "690",
             "press cam worn", "CAPA-2026-031", "EQ-PRESS-01", "L-API-7", "Olivia Example", "Oscar Example",
             "Sam Example", "Quinn Example", "Released"]
    for fact in facts:
        assert fact in str(record) and fact in text, fact

    # the audit trail verifies, through the API and on the command line
    assert quinn.get("/audit/verify")["ok"] is True
    verified = subprocess.run([str(Path(sys.executable).parent / "gmpflow"), "audit", "verify"],
                              env={**os.environ, "GMPFLOW_DATABASE_URL": database.url,
                                   "GMPFLOW_AUDIT_KEY_FILE": str(database.audit_key.path)},
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok:")
