"""The Tryton connector against a real Tryton 8.2 started for the session (tests/tryton_server.py)."""

from __future__ import annotations

import json

import pytest

from connectors.plugins import build_registry
from engine.audit import Actor
from engine.errors import ConnectorError
from engine.operations import CallContext, OperationRegistry
from engine.services import Gmpflow
from engine.states import InstanceStatus
from tests.tryton_server import PASSWORD, TrytonServer

pytestmark = pytest.mark.tryton


@pytest.fixture(scope="module")
def registry(tryton: TrytonServer) -> OperationRegistry:
    return build_registry(tryton.environ)


def call(registry: OperationRegistry, name: str, key: str = "task-1", **params: object) -> dict:
    operation = registry.get(name)
    operation.validate_params(params)
    return operation.call(params, CallContext(key, 1, 1))


def test_reading_an_order_gives_product_bom_quantity_dates_and_materials(tryton, registry) -> None:
    order = tryton.create_order(quantity=10)
    read = call(registry, "erp.get_production_order", order=order["number"])
    assert read["number"] == order["number"] and read["state"] == "waiting"
    assert (read["product"], read["quantity"], read["unit"]) == ("TAB-100", 10.0, "u")
    assert read["bom"] == "Paracetamol 500 mg, BoM v1"
    assert read["planned_start_date"] < read["planned_date"]
    assert sorted((i["product"], i["quantity"]) for i in read["inputs"]) == [("API-001", 20.0),
                                                                             ("EXC-002", 30.0)]
    assert [(o["product"], o["quantity"]) for o in read["outputs"]] == [("TAB-100", 10.0)]
    assert call(registry, "erp.get_production_order", order=order["id"])["number"] == order["number"]


def test_an_unknown_order_is_a_business_error_a_boundary_event_can_catch(registry) -> None:
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.get_production_order", order="NO-SUCH-ORDER")
    assert (err.value.bpmn_error_code, err.value.retryable) == ("order_not_found", False)


def test_setting_a_state_goes_through_trytons_workflow_and_repeating_it_is_a_no_op(tryton, registry) -> None:
    order = tryton.create_order()
    assert call(registry, "erp.set_order_state", order=order["number"], state="assigned")["changed"] is True
    assert tryton.read_order(order["id"])["state"] == "assigned"
    again = call(registry, "erp.set_order_state", order=order["number"], state="assigned")
    assert (again["state"], again["changed"]) == ("assigned", False)
    call(registry, "erp.set_order_state", order=order["number"], state="running")
    assert tryton.read_order(order["id"])["state"] == "running"


def test_an_already_released_order_cannot_be_sent_back(tryton, registry) -> None:
    order = tryton.create_order()
    for state in ("assigned", "running"):
        call(registry, "erp.set_order_state", order=order["number"], state=state)
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.set_order_state", order=order["number"], state="waiting")
    assert (err.value.bpmn_error_code, err.value.retryable) == ("order_already_released", False)


def test_a_transition_tryton_refuses_is_a_state_conflict(tryton, registry) -> None:
    order = tryton.create_order(wait=False)  # draft: cannot be assigned before it waits
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.set_order_state", order=order["id"], state="assigned")
    assert err.value.bpmn_error_code == "order_state_conflict"
    assert tryton.read_order(order["id"])["state"] == "draft"


def test_reporting_production_records_produced_and_consumed_quantities_and_finishes_the_order(tryton,
                                                                                              registry):
    order = tryton.create_order(quantity=10)
    for state in ("assigned", "running"):
        call(registry, "erp.set_order_state", order=order["number"], state=state)
    result = call(registry, "erp.report_production", order=order["number"], produced_quantity=9,
                  consumed=[{"product": "API-001", "quantity": 20}, {"product": "EXC-002", "quantity": 28}])
    assert result == {"order": order["number"], "state": "done", "applied": True}
    done = tryton.read_order(order["id"])
    inputs = tryton.moves(done["inputs"])
    outputs = tryton.moves(done["outputs"])
    assert sum(m["quantity"] for m in inputs if m["product."]["code"] == "API-001") == 20
    assert [m["quantity"] for m in outputs if m["product."]["code"] == "TAB-100"] == [9]
    returned = [m["quantity"] for m in outputs if m["product."]["code"] == "EXC-002"]
    assert returned == [2.0], "less consumed than issued goes back to the warehouse"
    repeat = call(registry, "erp.report_production", order=order["number"], produced_quantity=9)
    assert repeat["applied"] is False


def running_order(tryton: TrytonServer, registry: OperationRegistry, quantity: float = 10) -> dict:
    order = tryton.create_order(quantity=quantity)
    for state in ("assigned", "running"):
        call(registry, "erp.set_order_state", order=order["number"], state=state)
    return order


def test_each_lot_consumed_is_on_an_input_move_of_the_order_and_the_product_lot_on_its_output(tryton,
                                                                                              registry):
    """Tryton itself answers which production consumed a lot, with the quantity, and which lot it made."""
    for lot, material in (("L-API-71", "api"), ("L-API-72", "api"), ("L-EXC-31", "excipient")):
        tryton.receive_lot(lot, material, 100)
    order = running_order(tryton, registry)
    consumed = [{"product": "API-001", "quantity": 20, "lots": [{"lot": "L-API-71", "quantity": 12},
                                                               {"lot": "L-API-72", "quantity": 8}]},
                {"product": "EXC-002", "quantity": 30, "lots": [{"lot": "L-EXC-31", "quantity": 30}]}]
    report = dict(order=order["number"], produced_quantity=10, product_lot="BATCH-LOT-1", consumed=consumed)
    assert call(registry, "erp.report_production", key="task-lots", **report)["applied"] is True

    number = order["number"]
    assert tryton.consumers_of("L-API-71") == [(number, "API-001", 12)]
    assert tryton.consumers_of("L-API-72") == [(number, "API-001", 8)]
    assert tryton.consumers_of("L-EXC-31") == [(number, "EXC-002", 30)]
    client = tryton.client
    done = tryton.read_order(order["id"])
    inputs = client.model("stock.move", "read", done["inputs"],
                          ["product.code", "lot.number", "quantity", "state"])
    assert sorted((m["product."]["code"], (m.get("lot.") or {}).get("number"), m["quantity"])
                  for m in inputs if m["state"] == "done") == [
        ("API-001", "L-API-71", 12), ("API-001", "L-API-72", 8), ("EXC-002", "L-EXC-31", 30)], \
        "the unlotted inputs issued when the order started are cancelled: each done input carries its lot"
    outputs = client.model("stock.move", "read", done["outputs"], ["product.code", "lot.number", "state"])
    assert [(m["product."]["code"], m["lot."]["number"], m["state"]) for m in outputs] == [
        ("TAB-100", "BATCH-LOT-1", "done")]
    # Tryton's lot trace: from a consumed lot up to the lot the order made
    [trace] = client.model("stock.lot.trace", "search_read", [["lot.number", "=", "L-API-72"],
                                                              ["production_input", "=", order["id"]]],
                           0, None, None, ["upward_traces", "document"])
    assert trace["document"] == f"production,{order['id']}"
    upward = client.model("stock.lot.trace", "read", trace["upward_traces"], ["lot.number"])
    assert [u["lot."]["number"] for u in upward] == ["BATCH-LOT-1"]

    def notes(lot: str, product: str) -> list[str]:
        [lot_id] = client.model("stock.lot", "search", [["number", "=", lot], ["product.code", "=", product]],
                                0, 2, None)
        return [str(n["message"]).splitlines()[0] for n in client.model(
            "ir.note", "search_read", [["resource", "=", f"stock.lot,{lot_id}"]], 0, 10, None, ["message"])]
    assert notes("L-API-71", "API-001") == [f"GMP consumed: 12 u by production {number}"]
    assert call(registry, "erp.report_production", key="task-lots", **report)["applied"] is False
    assert tryton.consumers_of("L-API-71") == [(number, "API-001", 12)], "a retry moves nothing again"
    assert notes("L-API-71", "API-001") == [f"GMP consumed: 12 u by production {number}"], "nor notes again"


def test_a_lot_tryton_has_no_stock_of_is_refused_and_the_order_keeps_running_unchanged(tryton, registry):
    tryton.receive_lot("L-API-81", "api", 100)
    order = running_order(tryton, registry)
    before = tryton.moves(tryton.read_order(order["id"])["inputs"])
    consumed = [{"product": "API-001", "quantity": 20, "lots": [{"lot": "L-API-81", "quantity": 15},
                                                               {"lot": "L-API-NONE", "quantity": 5}]}]
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.report_production", order=order["number"], produced_quantity=10,
             consumed=consumed)
    assert (err.value.bpmn_error_code, err.value.retryable) == ("lot_not_available", False)
    assert "L-API-NONE (API-001)" in err.value.message and order["number"] in err.value.message
    after = tryton.read_order(order["id"])
    assert after["state"] == "running" and tryton.moves(after["inputs"]) == before
    assert tryton.consumers_of("L-API-81") == []


def test_lots_that_do_not_add_up_to_the_consumed_quantity_are_refused_before_anything_changes(tryton,
                                                                                             registry):
    order = running_order(tryton, registry)
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.report_production", order=order["number"], produced_quantity=10,
             consumed=[{"product": "API-001", "quantity": 20, "lots": [{"lot": "L-API-91", "quantity": 15}]}])
    assert err.value.bpmn_error_code == "lot_quantity_mismatch"
    assert "add up to 15, not to the 20 consumed" in err.value.message
    assert tryton.read_order(order["id"])["state"] == "running"


def test_consumption_above_what_was_issued_is_refused_and_changes_nothing(tryton, registry) -> None:
    order = tryton.create_order(quantity=10)
    for state in ("assigned", "running"):
        call(registry, "erp.set_order_state", order=order["number"], state=state)
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.report_production", order=order["number"], produced_quantity=10,
             consumed=[{"product": "API-001", "quantity": 25}])
    assert err.value.bpmn_error_code == "consumption_exceeds_issue"
    assert tryton.read_order(order["id"])["state"] == "running"


def test_reporting_results_for_an_order_that_is_not_running_is_refused(tryton, registry) -> None:
    order = tryton.create_order()
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.report_production", order=order["number"], produced_quantity=1)
    assert err.value.bpmn_error_code == "order_not_running"


def test_lot_disposition_is_recorded_once_per_idempotency_key_and_the_latest_wins(tryton, registry) -> None:
    first = call(registry, "erp.set_lot_disposition", key="task-q", lot="L-2026-001", product="TAB-100",
                 disposition="quarantined", reason="OOS investigation")
    assert first == {"lot": "L-2026-001", "disposition": "quarantined", "applied": True}
    assert call(registry, "erp.set_lot_disposition", key="task-q", lot="L-2026-001", product="TAB-100",
                disposition="quarantined")["applied"] is False
    released = call(registry, "erp.set_lot_disposition", key="task-r", lot="L-2026-001", product="TAB-100",
                    disposition="released")
    assert released["disposition"] == "released"
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.set_lot_disposition", lot="L-404", product="TAB-100", disposition="released")
    assert err.value.bpmn_error_code == "lot_not_found"


def test_a_wrong_password_fails_without_revealing_the_password(tryton) -> None:
    environ = {**tryton.environ, "GMPFLOW_TRYTON_PASSWORD": "not-the-password-XYZ"}
    with pytest.raises(ConnectorError) as err:
        call(build_registry(environ), "erp.get_production_order", order="1")
    assert err.value.code == "tryton_login_failed" and err.value.retryable is False
    assert "not-the-password-XYZ" not in str(err.value.to_dict()) and PASSWORD not in str(err.value.to_dict())


def test_tryton_down_is_a_retryable_error(tryton) -> None:
    environ = {**tryton.environ, "GMPFLOW_TRYTON_URL": "http://127.0.0.1:9"}
    with pytest.raises(ConnectorError) as err:
        call(build_registry(environ), "erp.get_production_order", order="1")
    assert err.value.retryable is True and err.value.bpmn_error_code is None
    assert PASSWORD not in err.value.message


# -- through the engine: service tasks run as jobs against Tryton --------------------------------------------
RELEASE_IN_ERP = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
<bpmn:process id="release_in_erp" isExecutable="true">
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:serviceTask id="fetch"><bpmn:extensionElements>
  <spiffworkflow:serviceTaskOperator id="erp.get_production_order" resultVariable="erp_order">
    <spiffworkflow:parameters><spiffworkflow:parameter id="order" type="str" value="order_number"/>
    </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
  <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
<bpmn:serviceTask id="reserve"><bpmn:extensionElements>
  <spiffworkflow:serviceTaskOperator id="erp.set_order_state" resultVariable="erp_state">
    <spiffworkflow:parameters><spiffworkflow:parameter id="order" type="str" value="order_number"/>
      <spiffworkflow:parameter id="state" type="str" value="'assigned'"/>
    </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
  <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:serviceTask>
<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fetch"/>
<bpmn:sequenceFlow id="f2" sourceRef="fetch" targetRef="reserve"/>
<bpmn:sequenceFlow id="f3" sourceRef="reserve" targetRef="end"/>
</bpmn:process></bpmn:definitions>"""


@pytest.fixture
def engine(database, clock, registry) -> Gmpflow:  # type: ignore[no-untyped-def]
    """The conftest engine, with the connectors pointed at the test Tryton."""
    gmp = Gmpflow(database, clock, registry=registry, change_control="off")
    gmp.record_start()
    return gmp


def test_an_order_created_in_tryton_is_read_and_reserved_by_service_tasks_run_as_jobs(tryton, engine, deploy):
    order = tryton.create_order(quantity=5)
    deploy({"release_in_erp.bpmn": RELEASE_IN_ERP})
    instance = engine.start_instance(Actor("erp", "ERP"), "release_in_erp", order["number"],
                                     {"order_number": order["number"]})
    while engine.run_jobs_once():
        pass
    detail = engine.instance_detail(instance.id)
    assert detail["instance"].status == InstanceStatus.COMPLETED
    assert detail["variables"]["erp_order"]["product"] == "TAB-100"
    assert detail["variables"]["erp_state"] == {"order": order["number"], "state": "assigned",
                                                "changed": True}
    assert tryton.read_order(order["id"])["state"] == "assigned"
    trail = json.dumps([[e.before, e.after] for e in engine.audit_events(limit=1000)], default=str)
    assert PASSWORD not in trail and PASSWORD not in json.dumps(detail["variables"], default=str)


REPORT_TO_ERP = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
<bpmn:process id="report_to_erp" isExecutable="true">
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:serviceTask id="report"><bpmn:extensionElements>
  <spiffworkflow:serviceTaskOperator id="erp.report_production" resultVariable="reported">
    <spiffworkflow:parameters><spiffworkflow:parameter id="order" type="str" value="order_number"/>
      <spiffworkflow:parameter id="produced_quantity" type="any" value="10"/>
      <spiffworkflow:parameter id="consumed" type="any" value="consumed"/>
    </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
  <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="report"/>
<bpmn:sequenceFlow id="f2" sourceRef="report" targetRef="end"/>
</bpmn:process></bpmn:definitions>"""


@pytest.mark.parametrize(("lots", "readable"), [
    ([{"lot": "L-API-NOSTOCK", "quantity": 20}],  # the connector finds Tryton would not assign it
     "Tryton has not enough stock of lot L-API-NOSTOCK (API-001) where production order {number} picks"),
    ([{"lot": "L-API-HALF", "quantity": 19.5}],  # Tryton's own UserError: the unit 'u' has no decimals
     "Tryton refused model.stock.move.create: UserError: The number of digits in the value"),
], ids=["lot-not-in-stock", "tryton-refuses-the-quantity"])
def test_a_report_tryton_refuses_becomes_an_incident_with_a_readable_message_and_the_order_keeps_running(
        tryton, registry, engine, deploy, lots, readable) -> None:
    tryton.receive_lot("L-API-HALF", "api", 100)
    order = running_order(tryton, registry)
    deploy({"report_to_erp.bpmn": REPORT_TO_ERP})
    consumed = [{"product": "API-001", "quantity": sum(s["quantity"] for s in lots), "lots": lots}]
    instance = engine.start_instance(Actor("erp", "ERP"), "report_to_erp", order["number"],
                                     {"order_number": order["number"], "consumed": consumed})
    while engine.run_jobs_once():
        pass
    assert engine.instance_detail(instance.id)["instance"].status == InstanceStatus.FAILED
    [incident] = [i for i in engine.list_incidents() if i.instance_id == instance.id]
    assert incident.element_id == "report"
    assert incident.error.startswith(readable.format(number=order["number"])), incident.error
    assert tryton.read_order(order["id"])["state"] == "running"
    assert tryton.consumers_of(lots[0]["lot"]) == []


def test_a_user_without_stock_cancellation_is_refused_readably_and_the_retry_after_the_grant_applies_once(
        tryton) -> None:
    """The setting asks for the Production, Stock and Stock Cancellation groups: without the last, Tryton
    refuses to cancel the unlotted inputs; the lot moves already done are not made twice by the retry."""
    production, stock = tryton.group("Production"), tryton.group("Stock")
    settings = tryton.create_user("gmpflow-no-cancel", "gmpflow-S3cret-pass", [production, stock])
    registry = build_registry({**tryton.environ, "GMPFLOW_TRYTON_USER": settings.user,
                               "GMPFLOW_TRYTON_PASSWORD": settings.password})
    tryton.receive_lot("L-API-61", "api", 100)
    order = running_order(tryton, registry)
    consumed = [{"product": "API-001", "quantity": 20, "lots": [{"lot": "L-API-61", "quantity": 20}]}]
    report = dict(order=order["number"], produced_quantity=10, consumed=consumed)
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.report_production", key="task-grant", **report)
    assert err.value.code == "tryton_error" and err.value.retryable is False
    assert err.value.message.startswith("Tryton refused model.stock.move.cancel: "), err.value.message
    assert "(group Stock Cancellation) and the report is retried" in err.value.message
    assert tryton.read_order(order["id"])["state"] == "running"
    cancellation = tryton.group("Stock Cancellation")
    [user] = tryton.client.model("res.user", "search", [["login", "=", settings.user]], 0, 1, None)
    tryton.client.model("res.user", "write", [user], {"groups": [["add", [cancellation]]]})
    assert call(registry, "erp.report_production", key="task-grant", **report)["applied"] is True
    assert tryton.consumers_of("L-API-61") == [(order["number"], "API-001", 20)]
    inputs = tryton.client.model("stock.move", "read", tryton.read_order(order["id"])["inputs"],
                                 ["lot.number", "state"])
    assert sorted(((m.get("lot.") or {}).get("number") or "-", m["state"]) for m in inputs) == [
        ("-", "cancelled"), ("-", "done"), ("L-API-61", "done")], "EXC-002 has no lots: its input stays"
