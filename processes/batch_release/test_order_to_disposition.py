"""From an order in a real Tryton to the lot's disposition in Tryton: order release (processes/order_release)
throws batch_execution_requested; SOP execution runs the released SOP version step by step and reports the
production to Tryton; batch release takes QA's signed disposition to Tryton (the lot's note) and to the MES
simulator (SyncMaterialLot, schema-valid); the audit trail verifies.

Runs cached and with save-and-reload between steps (``reload``)."""

# ruff: noqa: F811  (the conftest fixtures are imported by name: processes/ has no conftest of its own)
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.plugins import build_registry
from connectors.simulator.server import RunningSimulator, serve
from connectors.tryton.operations import TrytonProduction
from engine.states import InstanceStatus
from processes.order_release.test_order_release import announce, build, release
from tests.b2mml_schema import assert_valid
from tests.batch_support import PASSWORD, PROCESSES
from tests.conftest import ADMIN, clock, database, postgres_database, sqlite_template  # noqa: F401
from tests.scenario_support import reload  # noqa: F401
from tests.tryton_server import TrytonServer

pytestmark = pytest.mark.tryton


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    running = serve()
    yield running
    running.stop()


def sign(username: str, meaning: str) -> dict[str, str]:
    return {"username": username, "password": PASSWORD, "meaning": meaning}


def test_an_order_from_tryton_runs_its_sop_and_qa_releases_the_lot_in_tryton(
        database, clock, reload, tryton: TrytonServer, simulator: RunningSimulator, monkeypatch, tmp_path,
        b2mml_schema) -> None:
    monkeypatch.setenv("GMPFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
    registry = build_registry({**tryton.environ, "GMPFLOW_MES_URL": simulator.url})
    flow = build(database, clock, registry, reload, monkeypatch)  # order release, its master data and people
    for username, roles in {"olivia": ["operator"], "oscar": ["operator"], "quinn": ["qa"]}.items():
        flow.current.add_user(ADMIN, username, f"{username.title()} Example", PASSWORD, roles)
    for path in PROCESSES:
        flow.current.deploy(ADMIN, [path])
    who = {name: flow.current.principal(name) for name in ("olivia", "oscar", "quinn", "sam", "paula")}

    def complete(name: str, instance_id: int, element_id: str, data: dict[str, Any], meaning: str) -> None:
        task = flow.task(who[name], instance_id, element_id)
        flow.complete_task(who[name], task.id, data, sign(name, meaning))
        flow.run_jobs()

    order = tryton.create_order(10)
    released = announce(flow, order)
    release(flow, who, released)
    batch_id = flow.variables(released)["batch_id"]
    [batch] = flow.list_instances(key="sop_execution", business_key=batch_id)[0]
    for number, equipment, person in ((1, "EQ-GRAN-01", "olivia"), (2, "EQ-PRESS-01", "oscar")):
        [step] = flow.list_instances(key="sop_step", business_key=f"{batch_id}/{number:05d}")[0]
        complete(person, step.id, "perform", {"values": [], "equipment_id": equipment, "materials_used": []},
                 "Performed")
        assert flow.status(step.id) == InstanceStatus.COMPLETED
    complete("olivia", batch.id, "record_yield", {"produced_quantity": 10}, "Performed")
    assert flow.status(batch.id) == InstanceStatus.COMPLETED
    assert tryton.read_order(order["id"])["state"] == "done"  # production reported to the ERP

    lot = tryton.client.model("stock.lot", "create", [{"number": batch_id, "product": tryton.ids["tablet"]}])[0]
    [release_instance] = flow.list_instances(key="batch_release", business_key=batch_id)[0]
    assert flow.variables(release_instance.id)["exceptions"] == []  # nothing unusual: QA still reviews
    complete("quinn", release_instance.id, "review_record", {"record_reviewed": True}, "Reviewed")
    complete("quinn", release_instance.id, "review_audit_trail", {"audit_trail_reviewed": True}, "Reviewed")
    complete("quinn", release_instance.id, "decide", {"disposition": "released", "decision_reason": "complete"},
             "Released")
    assert flow.status(release_instance.id) == InstanceStatus.COMPLETED
    assert TrytonProduction(tryton.client).lot_disposition(lot) == "released"  # visible in Tryton
    [sync] = [m for m in simulator.counterpart.received if m["kind"] == "SyncMaterialLot"]
    assert_valid(b2mml_schema, sync["xml"].encode())
    record = flow.batch_record(batch_id)
    assert record["order"]["order_id"] == order["number"] and record["sop"]["key"] == "SOP-TAB-100"
    assert [s["performed"]["by"] for s in record["steps"]] == ["olivia", "oscar"]
    assert flow.verify_audit().ok
