"""A counterpart's business error (order not found) is a BPMN error that a boundary event catches;
one the model does not catch becomes an incident at once (retrying cannot help)."""

from __future__ import annotations

from engine.states import InstanceStatus


def test_a_business_error_from_the_counterpart_follows_the_boundary_error_event(flow, deploy, users):
    deploy("service_business_error.bpmn")
    instance = flow.start_instance(users["planner"].actor, "service_business_error", "ORD-4711",
                                   {"error_code": "order_not_found"})
    flow.run_jobs()
    assert flow.open_elements(users["admin"], instance.id) == ["handle_missing"]
    assert flow.list_incidents() == []
    thrown = [e for e in flow.audit_events(action="job.bpmn_error", limit=10)]
    assert thrown[0].after["error_code"] == "order_not_found"


def test_a_business_error_the_model_does_not_catch_becomes_an_incident_without_retries(flow, deploy, users):
    deploy("service_business_error.bpmn")
    instance = flow.start_instance(users["planner"].actor, "service_business_error", "ORD-1",
                                   {"error_code": "order_already_released"})
    flow.run_jobs()
    incidents = flow.list_incidents()
    assert [(i.instance_id, i.attempts) for i in incidents] == [(instance.id, 1)]
    assert flow.status(instance.id) == InstanceStatus.FAILED
