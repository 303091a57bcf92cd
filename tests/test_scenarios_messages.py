"""Scenarios: message start, intermediate message catch, messages between instances, kept and expired
messages."""

from __future__ import annotations

from engine.states import InstanceStatus, MessageStatus
from engine.store.models import Message


def message_status(flow, message_id: int) -> str:  # type: ignore[no-untyped-def]
    with flow.session() as session:
        return session.get(Message, message_id).status


def test_a_message_starts_an_instance_with_its_payload_and_business_key(flow, deploy, users):
    deploy("message_start.bpmn")
    result = flow.correlate(users["planner"].actor, "production_order", {"business_key": "PO-77"},
                            {"quantity": 450, "product": "tablets"})
    assert result["status"] == MessageStatus.MATCHED
    instance_id = result["instance_id"]
    detail = flow.instance_detail(instance_id)
    assert detail["instance"].business_key == "PO-77"
    assert detail["variables"]["batches"] == 4
    flow.complete(users["operator"], instance_id, "confirm", {"confirmed": True})
    assert flow.status(instance_id) == InstanceStatus.COMPLETED
    assert flow.path(instance_id)[:2] == ["order_received", "plan"]
    assert flow.variables(instance_id)["order"] == {"quantity": 450, "product": "tablets"}


def test_an_intermediate_catch_receives_the_message_correlated_on_its_business_key(flow, deploy, users):
    deploy("message_catch.bpmn")
    first = flow.start_instance(users["operator"].actor, "message_catch", "LOT-1")
    second = flow.start_instance(users["operator"].actor, "message_catch", "LOT-2")
    for instance in (first, second):
        flow.complete(users["operator"], instance.id, "send_sample", {})
    result = flow.correlate(users["qa"].actor, "qc_result", {"business_key": "LOT-2"}, {"result": "pass"})
    assert result == {"status": MessageStatus.MATCHED, "instance_id": second.id}
    assert flow.status(second.id) == InstanceStatus.COMPLETED
    assert flow.variables(second.id)["released"] is True
    assert flow.status(first.id) == InstanceStatus.WAITING
    flow.correlate(users["qa"].actor, "qc_result", {"business_key": "LOT-1"}, {"result": "fail"})
    assert flow.status(first.id) == InstanceStatus.COMPLETED
    assert flow.variables(first.id)["released"] is False


def test_a_message_thrown_by_one_instance_is_caught_by_another(flow, deploy, users):
    deploy("message_throw_receiver.bpmn")
    deploy("message_throw_sender.bpmn")
    receiver = flow.start_instance(users["operator"].actor, "message_throw_receiver", "LOT-5")
    sender = flow.start_instance(users["operator"].actor, "message_throw_sender", "LOT-5",
                                 {"lot": "LOT-5"})
    flow.complete(users["operator"], sender.id, "finish_lot", {"units": 1200})
    assert flow.status(sender.id) == InstanceStatus.COMPLETED
    assert flow.status(receiver.id) == InstanceStatus.WAITING  # delivered by a job, after the commit
    assert flow.run_jobs() == 1
    assert flow.variables(receiver.id)["finished"] == {"lot": "LOT-5", "units": 1200}
    flow.complete(users["operator"], receiver.id, "pack", {})
    assert flow.status(receiver.id) == InstanceStatus.COMPLETED


def test_a_message_sent_before_anyone_waits_is_kept_and_delivered_within_its_ttl(flow, deploy, users, clock):
    deploy("message_catch.bpmn")
    instance = flow.start_instance(users["operator"].actor, "message_catch", "LOT-3")
    early = flow.correlate(users["qa"].actor, "qc_result", {"business_key": "LOT-3"}, {"result": "pass"},
                           ttl_seconds=3600)
    assert early["status"] == MessageStatus.PENDING
    clock.advance(minutes=30)
    assert flow.run_jobs() == 0
    flow.complete(users["operator"], instance.id, "send_sample", {})  # now it waits: the kept message matches
    assert flow.run_jobs() == 1
    assert message_status(flow, early["message_id"]) == MessageStatus.MATCHED
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["released"] is True


def test_a_message_past_its_ttl_expires_visibly_and_is_not_delivered(flow, deploy, users, clock):
    deploy("message_catch.bpmn")
    instance = flow.start_instance(users["operator"].actor, "message_catch", "LOT-4")
    early = flow.correlate(users["qa"].actor, "qc_result", {"business_key": "LOT-4"}, {"result": "pass"},
                           ttl_seconds=600)
    clock.advance(minutes=11)
    flow.run_jobs_once()
    assert message_status(flow, early["message_id"]) == MessageStatus.EXPIRED
    assert [e.object_id for e in flow.audit_events(action="message.expired")] == [str(early["message_id"])]
    flow.complete(users["operator"], instance.id, "send_sample", {})
    assert flow.run_jobs() == 0
    assert flow.status(instance.id) == InstanceStatus.WAITING
