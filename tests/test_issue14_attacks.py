"""Held-out attacks on issue 14, driven through the REST API of the real app with models written here.

Each attack is a way around "nothing reaches a GMP record except through the model's declared path, by a
person the model allows": the refusal has its status and code, and stored state is as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.services import Gmpflow
from engine.store.models import Message
from tests.api_support import Api
from tests.authority_support import audit_tail, form, last_seq, rows, waiting_model
from tests.conftest import ADMIN
from tests.hostile_support import bundle, snapshot


def _deploy(engine: Gmpflow, tmp_path: Any, files: dict[str, str]) -> None:
    folder = tmp_path / f"bundle{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    engine.deploy(ADMIN, [folder])


def _variables(engine: Gmpflow, instance_id: int) -> dict[str, Any]:
    return dict(engine.instance_detail(instance_id)["variables"])


# -- a kept message reaches only the events that let its sender in -------------------------------------------
KEPT = [
    # the waiting process's catch event: its message.senders and lane; the planted key
    pytest.param(None, None, "note", id="no-senders-no-lane: integration and admin only"),
    pytest.param("qa", None, "note", id="senders-qa"),
    pytest.param(None, "supervisor", "note", id="lane-supervisor"),
]


@pytest.mark.parametrize(("senders", "lane", "key"), KEPT)
def test_a_message_kept_for_one_process_is_not_delivered_into_another_that_refuses_its_sender(
        engine: Gmpflow, api: Api, tmp_path: Any, senders: str | None, lane: str | None, key: str) -> None:
    """An operator may send ``ping`` to process ``open`` (its catch event names operator); with nothing
    waiting the message is kept. It must not later be delivered to process ``closed``, whose catch event
    for the same message does not let an operator in (nor declares the key)."""
    _deploy(engine, tmp_path, {"open.bpmn": waiting_model("open", senders="operator", fields=key)})
    _deploy(engine, tmp_path, {"closed.bpmn": waiting_model("closed", senders=senders, lane=lane,
                                                            start_roles="admin")})
    kept = api.post("/api/v1/messages", as_="olivia",
                    json={"name": "ping", "correlation_keys": {}, "payload": {key: "planted"}})
    assert (kept.status_code, kept.get_json()["status"]) == (200, "pending")
    started = api.post("/api/v1/process-definitions/closed/instances", as_="ada",
                       json={"business_key": "C-1", "variables": {}})
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]
    while engine.run_jobs_once():
        pass
    assert "ping" not in _variables(engine, instance_id)
    with engine.db.read() as session:
        assert session.scalar(select(Message.status)) == "pending"
    assert [e.after["instance_id"] for e in engine.audit_events(action="message.delivery_refused")] \
        == [instance_id]


def test_a_kept_message_is_delivered_to_an_event_that_lets_its_sender_in(engine: Gmpflow, api: Api,
                                                                           tmp_path: Any) -> None:
    _deploy(engine, tmp_path, {"open.bpmn": waiting_model("open", senders="operator", fields="note",
                                                          start_roles="admin")})
    kept = api.post("/api/v1/messages", as_="olivia",
                    json={"name": "ping", "correlation_keys": {}, "payload": {"note": "ok"}})
    assert kept.get_json()["status"] == "pending"
    started = api.post("/api/v1/process-definitions/open/instances", as_="ada",
                       json={"business_key": "O-1", "variables": {}})
    while engine.run_jobs_once():
        pass
    assert _variables(engine, started.get_json()["id"])["ping"] == {"note": "ok"}


# -- reads of tasks need a reason too ------------------------------------------------------------------------
TWO_LANES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="two_lanes_defs" targetNamespace="http://gmpflow.example/bpmn">
  <bpmn:process id="two_lanes" name="Two lanes" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="l_op" name="operator"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>measure</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="l_qa" name="qa"><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="measure" name="Measure"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="formId" value="tl_measure"/></spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="review" name="Review"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="formId" value="tl_review"/></spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="measure"/>
    <bpmn:sequenceFlow id="f2" sourceRef="measure" targetRef="review"/>
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def two_lanes(engine: Gmpflow, api: Api, tmp_path: Any) -> dict[str, int]:
    """Olivia's instance of ``two_lanes``: she measured, Quinn (qa) reviewed; Oscar (operator) took no part.
    Returns the ids of the instance and its tasks."""
    _deploy(engine, tmp_path, {"two_lanes.bpmn": TWO_LANES,
                               "tl_measure.form": form("tl_measure", {"key": "value", "type": "number"}),
                               "tl_review.form": form("tl_review", {"key": "verdict", "type": "textfield"})})
    instance = api.post("/api/v1/process-definitions/two_lanes/instances", as_="olivia",
                        json={"business_key": "TL-1", "variables": {}}).get_json()["id"]
    [measure] = api.get(f"/api/v1/tasks?instance_id={instance}", as_="olivia").get_json()
    assert api.post(f"/api/v1/tasks/{measure['id']}/complete", as_="olivia",
                    json={"data": {"value": 7}}).status_code == 200
    [review] = api.get(f"/api/v1/tasks?instance_id={instance}", as_="quinn").get_json()
    return {"instance": instance, "measure": measure["id"], "review": review["id"]}


def test_an_operator_cannot_read_a_task_of_an_instance_he_takes_no_part_in(
        engine: Gmpflow, api: Api, two_lanes: dict[str, int]) -> None:
    api.token("oscar")
    before = snapshot(engine.db)
    for task in ("measure", "review"):  # completed (its data) and open in a lane he does not hold
        refused = api.get(f"/api/v1/tasks/{two_lanes[task]}", as_="oscar")
        assert (refused.status_code, refused.get_json()["code"]) in {(403, "not_permitted"),
                                                                     (403, "role_required")}, task
    assert snapshot(engine.db) == before
    # who took part reads them
    assert api.get(f"/api/v1/tasks/{two_lanes['measure']}", as_="olivia").get_json()["data"] == {"value": 7}
    assert api.get(f"/api/v1/tasks/{two_lanes['review']}", as_="quinn").status_code == 200


def test_an_operator_cannot_list_the_tasks_of_a_role_he_does_not_hold(
        engine: Gmpflow, api: Api, two_lanes: dict[str, int]) -> None:
    api.token("oscar")
    before = snapshot(engine.db)
    for query in ("role=qa", "role=qa&state=open", "role=qa&state=completed"):
        refused = api.get(f"/api/v1/tasks?{query}", as_="oscar")
        assert (refused.status_code, refused.get_json()["code"]) == (403, "not_permitted"), query
    assert snapshot(engine.db) == before
    assert [t["id"] for t in api.get("/api/v1/tasks?role=qa", as_="quinn").get_json()] \
        == [two_lanes["review"]]


# -- a message reaches every event waiting for it: each must let its sender in -------------------------------
def _catch(element: str, senders: str) -> str:
    return f"""<bpmn:intermediateCatchEvent id="{element}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="message.senders" value="{senders}"/>
        <spiffworkflow:property name="message.fields" value="note"/></spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>to_{element}</bpmn:incoming><bpmn:outgoing>from_{element}</bpmn:outgoing>
      <bpmn:messageEventDefinition id="med_{element}" messageRef="msg_ping">
        <bpmn:extensionElements><spiffworkflow:messageVariable>{element}_got</spiffworkflow:messageVariable>
        </bpmn:extensionElements></bpmn:messageEventDefinition>
    </bpmn:intermediateCatchEvent>"""


PARALLEL_CATCH = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="twin_defs" targetNamespace="http://gmpflow.example/bpmn">
  <bpmn:message id="msg_ping" name="ping"/>
  <bpmn:process id="twin" name="Twin" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>to_floor</bpmn:outgoing><bpmn:outgoing>to_release</bpmn:outgoing></bpmn:parallelGateway>
    {_catch("floor", "operator")}
    {_catch("release", "qa")}
    <bpmn:parallelGateway id="join"><bpmn:incoming>from_floor</bpmn:incoming>
      <bpmn:incoming>from_release</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <bpmn:sequenceFlow id="to_floor" sourceRef="split" targetRef="floor"/>
    <bpmn:sequenceFlow id="to_release" sourceRef="split" targetRef="release"/>
    <bpmn:sequenceFlow id="from_floor" sourceRef="floor" targetRef="join"/>
    <bpmn:sequenceFlow id="from_release" sourceRef="release" targetRef="join"/>
    <bpmn:sequenceFlow id="f2" sourceRef="join" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_message_that_would_reach_an_event_refusing_its_sender_is_refused(
        engine: Gmpflow, api: Api, tmp_path: Any) -> None:
    """``ping`` is awaited twice in one instance: by an event operators may send to and by one only QA may
    (the release). An operator's ``ping`` would complete both; it is refused, 403 ``not_permitted``."""
    _deploy(engine, tmp_path, {"twin.bpmn": PARALLEL_CATCH})
    instance_id = api.post("/api/v1/process-definitions/twin/instances", as_="ada",
                           json={"business_key": "T-1", "variables": {}}).get_json()["id"]
    api.token("olivia")
    before, seq = rows(engine.db), last_seq(engine.db)
    refused = api.post("/api/v1/messages", as_="olivia",
                       json={"name": "ping", "correlation_keys": {}, "payload": {"note": "x"}})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "not_permitted")
    assert rows(engine.db) == before
    [event] = audit_tail(engine.db, seq)  # the refusal itself is the one new audit event
    assert (event.action, event.after["allowed"]) == ("message.refused", ["qa"])
    assert not {"floor_got", "release_got"} & set(_variables(engine, instance_id))


def test_an_operator_does_not_list_the_done_tasks_of_instances_he_takes_no_part_in(
        engine: Gmpflow, api: Api, two_lanes: dict[str, int]) -> None:
    for query in ("state=completed", f"state=completed&instance_id={two_lanes['instance']}"):
        assert api.get(f"/api/v1/tasks?{query}", as_="oscar").get_json() == [], query
        assert [t["data"] for t in api.get(f"/api/v1/tasks?{query}", as_="olivia").get_json()] \
            == [{"value": 7}], query


# -- values a script leaves behind must be storable: never a 500 --------------------------------------------
LEFT_BEHIND = [
    pytest.param("x = 1\ny = float('inf')", id="infinity"),
    pytest.param("x = 1\ny = float('nan')", id="nan"),
    pytest.param("x = 1\ny = -float('1e308') * 10", id="minus-infinity"),
    pytest.param("x = 1\ny = {'a': float('inf')}", id="nested-infinity"),
]


@pytest.mark.parametrize("script", LEFT_BEHIND)
def test_a_script_leaving_a_value_json_cannot_hold_answers_a_clear_problem(
        api: Api, engine: Gmpflow, deploy: Any, script: str) -> None:
    deploy(bundle(script=script))
    api.token("ada")
    before = snapshot(engine.db)
    response = api.post("/api/v1/process-definitions/hostile/instances", as_="ada",
                        json={"business_key": "INF-1", "variables": {}})
    assert (response.status_code, response.get_json()["code"]) == (422, "script_failed"), response.get_json()
    assert snapshot(engine.db) == before
