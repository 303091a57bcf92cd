"""Scenarios: exclusive, parallel, inclusive and event-based gateways."""

from __future__ import annotations

import pytest

from engine.states import InstanceStatus, JobState


@pytest.mark.parametrize("ph, branch", [(4.5, "acidic"), (9.1, "basic"), (7.0, "neutral")])
def test_the_exclusive_gateway_takes_the_first_true_condition_or_the_default(flow, deploy, users, ph, branch):
    deploy("gateway_exclusive.bpmn")
    instance = flow.start_instance(users["operator"].actor, "gateway_exclusive")
    flow.complete(users["operator"], instance.id, "measure", {"ph": ph})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.path(instance.id, "ScriptTask") == [branch]
    assert flow.variables(instance.id)["verdict"] == branch


@pytest.mark.parametrize("first, second", [("clean", "sample"), ("sample", "clean")])
def test_the_parallel_join_waits_for_both_branches_in_either_order(flow, deploy, users, first, second):
    deploy("gateway_parallel.bpmn")
    who = {"clean": users["operator"], "sample": users["qa"]}
    data = {"clean": {"cleaned": True}, "sample": {"sampled": True}}
    instance = flow.start_instance(users["operator"].actor, "gateway_parallel")
    assert flow.open_elements(users["admin"], instance.id) == ["clean", "sample"]
    assert flow.open_elements(users["qa"], instance.id) == ["sample"]
    flow.complete(who[first], instance.id, first, data[first])
    assert flow.status(instance.id) == InstanceStatus.WAITING
    assert flow.open_elements(users["admin"], instance.id) == [second]
    flow.complete(who[second], instance.id, second, data[second])
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.path(instance.id).count("summarize") == 1
    assert flow.variables(instance.id)["ready"] is True


@pytest.mark.parametrize("sterile, active, branches", [
    (True, True, ["chem", "micro"]),
    (True, False, ["micro"]),
    (False, True, ["chem"]),
    (False, False, []),
])
def test_the_inclusive_gateway_runs_every_true_branch_and_joins_only_those(flow, deploy, users, sterile,
                                                                          active, branches):
    deploy("gateway_inclusive.bpmn")
    instance = flow.start_instance(users["operator"].actor, "gateway_inclusive", None,
                                   {"sterile": sterile, "active_ingredient": active})
    assert flow.open_elements(users["operator"], instance.id) == branches
    for element in branches:
        assert flow.status(instance.id) == InstanceStatus.WAITING
        flow.complete(users["operator"], instance.id, element, {f"{element}_ok": True})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    variables = flow.variables(instance.id)
    assert variables["released"] is True
    assert flow.path(instance.id).count("release") == 1
    assert ("visual" in flow.path(instance.id)) == (branches == [])
    assert all(variables[f"{element}_ok"] for element in branches)


def test_the_event_based_gateway_follows_the_message_when_it_comes_first(flow, deploy, users, clock):
    deploy("gateway_event_based.bpmn")
    instance = flow.start_instance(users["operator"].actor, "gateway_event_based", "SAMPLE-7")
    assert flow.status(instance.id) == InstanceStatus.WAITING
    clock.advance(minutes=10)
    assert flow.run_jobs() == 0  # the timer is not due yet
    result = flow.correlate(users["qa"].actor, "lab_result", {"business_key": "SAMPLE-7"}, {"value": "pass"})
    assert result == {"status": "matched", "instance_id": instance.id}
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["outcome"] == "result pass"
    assert "escalate" not in flow.path(instance.id)
    timers = [j for j in flow.instance_detail(instance.id)["jobs"] if j.kind == "timer"]
    assert [j.state for j in timers] == [JobState.CANCELLED]
    clock.advance(minutes=60)
    assert flow.run_jobs() == 0


def test_the_event_based_gateway_follows_the_timer_when_no_message_comes(flow, deploy, users, clock):
    deploy("gateway_event_based.bpmn")
    instance = flow.start_instance(users["operator"].actor, "gateway_event_based", "SAMPLE-8")
    clock.advance(minutes=31)
    assert flow.run_jobs() == 1
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["outcome"] == "escalated"
    assert "accept_result" not in flow.path(instance.id)
    late = flow.correlate(users["qa"].actor, "lab_result", {"business_key": "SAMPLE-8"}, {"value": "pass"},
                          ttl_seconds=60)
    assert late["status"] == "pending"  # nobody waits any more: kept, then it expires
