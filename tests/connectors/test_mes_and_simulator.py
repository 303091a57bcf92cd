"""The MES connector (B2MML over HTTP) and the simulator's ERP, against the reference simulator served on
127.0.0.1: what arrives is schema-valid B2MML, a repeated message id is acknowledged and applied once,
hostile XML leaves nothing behind, and the engine's retries and incidents work against a counterpart
that is down."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from connectors import http
from connectors.b2mml import messages as m
from connectors.plugins import build_registry
from connectors.simulator.server import RunningSimulator, serve
from engine.audit import Actor
from engine.errors import ConnectorError
from engine.operations import CallContext, OperationRegistry
from engine.services import Gmpflow
from engine.states import InstanceStatus
from tests.b2mml_schema import assert_valid
from tests.conftest import ADMIN
from tests.connectors.test_b2mml_messages import HOSTILE

ORDER = {"order": "MO-0042", "product": "TAB-100", "quantity": 1000, "unit": "u",
         "planned_start": "2026-12-01", "planned_end": "2026-12-02",
         "operations_definition": "TAB-100 recipe v3",
         "materials": [{"product": "API-001", "quantity": 500, "unit": "g"}]}


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    running = serve()
    running.counterpart.add_order("MO-0042", "TAB-100", 1000, planned_start_date="2026-12-01",
                                  planned_date="2026-12-02")
    yield running
    running.stop()


@pytest.fixture
def registry(simulator: RunningSimulator) -> OperationRegistry:
    return build_registry({"GMPFLOW_MES_URL": simulator.url, "GMPFLOW_MES_TOKEN": "mes-token-SECRET",
                           "GMPFLOW_ERP": "simulator", "GMPFLOW_ERP_URL": simulator.url})


def call(registry: OperationRegistry, name: str, key: str = "task-1", attempt: int = 1, **params: object):
    operation = registry.get(name)
    operation.validate_params(params)
    return operation.call(params, CallContext(key, 1, attempt))


def received(simulator: RunningSimulator) -> list[dict]:
    with urllib.request.urlopen(f"{simulator.url}/received") as response:
        return json.loads(response.read())


def control(simulator: RunningSimulator, **settings: object) -> None:
    request = urllib.request.Request(f"{simulator.url}/_control", data=json.dumps(settings).encode(),
                                     method="POST")
    urllib.request.urlopen(request).close()


# -- MES: B2MML ----------------------------------------------------------------------------------------------
def test_a_schedule_arrives_in_the_mes_as_valid_b2mml_and_is_acknowledged(simulator, registry, b2mml_schema):
    result = call(registry, "mes.send_schedule", key="task-3f2a", **ORDER)
    assert result == {"bodid": "task-3f2a", "acknowledged": True, "acknowledgement_bodid": "ack-task-3f2a"}
    (doc,) = received(simulator)
    assert (doc["bodid"], doc["kind"], doc["order"]) == ("task-3f2a", "ProcessOperationsSchedule", "MO-0042")
    assert_valid(b2mml_schema, doc["xml"].encode())
    assert m.parse_schedule(doc["xml"]).operations_definition == "TAB-100 recipe v3"


def test_a_repeated_message_id_is_acknowledged_again_but_applied_once(simulator, registry):
    first = call(registry, "mes.send_schedule", key="task-3f2a", **ORDER)
    again = call(registry, "mes.send_schedule", key="task-3f2a", attempt=2, **ORDER)
    assert again == first
    assert len(received(simulator)) == 1
    assert simulator.counterpart.orders["MO-0042"]["applied"] == ["task-3f2a"]


def test_an_mes_that_does_not_acknowledge_at_once_leaves_the_schedule_unacknowledged(simulator, registry):
    control(simulator, acknowledge=False)
    assert call(registry, "mes.send_schedule", **ORDER) == {"bodid": "task-1", "acknowledged": False}


def test_an_mes_that_is_down_is_a_retryable_error_that_names_no_secret(simulator, registry):
    control(simulator, fail_next=1)
    with pytest.raises(ConnectorError) as err:
        call(registry, "mes.send_schedule", **ORDER)
    assert err.value.retryable is True and "503" in err.value.message
    assert "mes-token-SECRET" not in json.dumps(err.value.to_dict())
    assert received(simulator) == []


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_xml_sent_to_the_b2mml_endpoint_is_refused_and_leaves_nothing_behind(simulator, case):
    reply = http.request("POST", f"{simulator.url}/b2mml", counterpart="the simulator", body=HOSTILE[case],
                         headers={"Content-Type": "application/xml"})
    assert reply.status in (400, 413)
    if reply.status == 400:
        assert json.loads(reply.body)["code"] in ("xml_forbidden", "xml_too_large")
    assert received(simulator) == [] and simulator.counterpart.replies == {}


def test_lot_disposition_and_operations_definition_reach_the_mes_as_valid_b2mml(simulator, registry,
                                                                                b2mml_schema):
    call(registry, "mes.sync_lot_disposition", key="task-lot", lot="L-1", product="TAB-100",
         disposition="rejected", reason="failed dissolution")
    call(registry, "mes.sync_operations_definition", key="task-def", id="TAB-100 recipe", version="4",
         product="TAB-100", segments=["GRAN", "COMP"])
    docs = received(simulator)
    assert [d["kind"] for d in docs] == ["SyncMaterialLot", "SyncOperationsDefinition"]
    for doc in docs:
        assert_valid(b2mml_schema, doc["xml"].encode())
    assert simulator.counterpart.lots["L-1"]["disposition"] == "rejected"
    assert simulator.counterpart.definitions == {"TAB-100 recipe": "4"}


def test_production_results_reach_the_mes_as_valid_b2mml_once_per_idempotency_key(simulator, registry,
                                                                                  b2mml_schema):
    results = {"order": "MO-0042", "product": "TAB-100", "produced_quantity": 990, "unit": "u",
               "consumed": [{"product": "API-001", "quantity": 495, "unit": "g"}],
               "start": "2026-12-01T06:00:00+01:00", "end": None}
    first = call(registry, "mes.report_performance", key="task-perf", **results)
    again = call(registry, "mes.report_performance", key="task-perf", attempt=2, **results)  # a retried job
    assert first == again == {"bodid": "task-perf", "order": "MO-0042"}
    (doc,) = received(simulator)
    assert (doc["kind"], doc["bodid"], doc["order"]) == ("ProcessOperationsPerformance", "task-perf",
                                                         "MO-0042")
    assert_valid(b2mml_schema, doc["xml"].encode())
    performance = m.parse_performance(doc["xml"])
    assert (performance.produced.quantity, performance.consumed) == (990, (m.Material("API-001", 495, "g"),))
    assert (performance.start, performance.end) == ("2026-12-01T05:00:00Z", "")


def test_execution_results_uploaded_by_the_mes_finish_the_erp_order(simulator):
    simulator.counterpart.orders["MO-0042"]["state"] = "running"
    performance = m.build_performance(m.Performance("mes-1", "MO-0042",
                                                    m.Material("TAB-100", 990, "u", "Produced"),
                                                    (m.Material("API-001", 495, "g"),)))
    request = urllib.request.Request(f"{simulator.url}/b2mml", data=performance, method="POST")
    assert urllib.request.urlopen(request).status == 202
    order = simulator.counterpart.orders["MO-0042"]
    assert (order["state"], order["produced_quantity"]) == ("done", 990)


# -- ERP: the simulator backend of erp.* ---------------------------------------------------------------------
def test_the_simulator_erp_answers_the_same_contract_as_tryton(simulator, registry):
    order = call(registry, "erp.get_production_order", order="MO-0042")
    assert (order["number"], order["state"], order["product"], order["quantity"]) == ("MO-0042", "waiting",
                                                                                    "TAB-100", 1000)
    assert call(registry, "erp.set_order_state", order="MO-0042", state="running")["changed"] is True
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.set_order_state", order="MO-0042", state="waiting")
    assert (err.value.bpmn_error_code, err.value.retryable) == ("order_already_released", False)
    with pytest.raises(ConnectorError) as err:
        call(registry, "erp.get_production_order", order="MO-404")
    assert err.value.bpmn_error_code == "order_not_found"


# -- through the engine: retries, incident, admin retry, no duplicate ----------------------------------------
SEND_SCHEDULE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
<bpmn:process id="send_schedule" isExecutable="true">
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:serviceTask id="to_mes"><bpmn:extensionElements>
  <spiffworkflow:serviceTaskOperator id="mes.send_schedule" resultVariable="mes">
    <spiffworkflow:parameters>
      <spiffworkflow:parameter id="order" type="str" value="order"/>
      <spiffworkflow:parameter id="product" type="str" value="'TAB-100'"/>
      <spiffworkflow:parameter id="quantity" type="int" value="1000"/>
      <spiffworkflow:parameter id="planned_start" type="str" value="'2026-12-01'"/>
      <spiffworkflow:parameter id="planned_end" type="str" value="'2026-12-02'"/>
      <spiffworkflow:parameter id="operations_definition" type="str" value="'TAB-100 recipe v3'"/>
    </spiffworkflow:parameters>
  </spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
  <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="to_mes"/>
<bpmn:sequenceFlow id="f2" sourceRef="to_mes" targetRef="end"/>
</bpmn:process></bpmn:definitions>"""


@pytest.fixture
def engine(database, clock, registry) -> Gmpflow:  # type: ignore[no-untyped-def]
    """The conftest engine, with the connectors pointed at the simulator."""
    gmp = Gmpflow(database, clock, registry=registry, change_control="off")
    gmp.record_start()
    return gmp


def run_all(engine: Gmpflow) -> int:
    total = 0
    while ran := engine.run_jobs_once():
        total += ran
    return total


def test_mes_down_retries_then_an_incident_then_an_admin_retry_delivers_the_schedule_exactly_once(
        engine, deploy, simulator, clock):
    deploy({"send_schedule.bpmn": SEND_SCHEDULE})
    control(simulator, fail_next=3)  # the default: 3 attempts
    instance = engine.start_instance(Actor("erp", "ERP"), "send_schedule", "MO-0042", {"order": "MO-0042"})
    for _ in range(3):
        run_all(engine)
        clock.advance(seconds=60)
    (incident,) = engine.list_incidents()
    assert "503" in incident.error and "mes-token-SECRET" not in incident.error
    assert received(simulator) == []

    engine.retry_incident(ADMIN, incident.id, "MES back after maintenance")
    run_all(engine)
    assert engine.instance_detail(instance.id)["instance"].status == InstanceStatus.COMPLETED
    (doc,) = received(simulator)
    assert doc["order"] == "MO-0042"
    assert engine.instance_detail(instance.id)["variables"]["mes"]["acknowledged"] is True
    events = json.dumps([e.after for e in engine.audit_events(limit=1000)], default=str)
    assert "mes-token-SECRET" not in events


def test_a_taken_port_gives_the_demo_simulator_another_free_port_not_an_exit(simulator):
    """``gmpflow run`` starts the simulator on 8071 unless that is taken (another run, a test): werkzeug would
    end the process; ``start_alongside`` takes a free port instead and points the connectors at it."""
    from connectors.simulator.demo import start_alongside

    taken = simulator.url.rsplit(":", 1)[1]
    environ = {"GMPFLOW_SIMULATOR_PORT": taken}
    running = start_alongside(environ)
    try:
        assert running is not None and running.url != simulator.url
        assert environ["GMPFLOW_ERP_URL"] == environ["GMPFLOW_MES_URL"] == running.url
        with pytest.raises(OSError, match=f"port {taken} on 127.0.0.1 is in use"):
            serve(port=int(taken))
    finally:
        running.stop()
