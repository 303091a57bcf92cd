"""Scenarios: call activity, embedded subprocess, and boundary timer, error and message events."""

from __future__ import annotations

import pytest

from engine.states import InstanceStatus, JobState, TaskState


def test_a_call_activity_runs_the_called_process_of_the_bundle_and_returns_its_data(flow, deploy, users):
    deploy("call_activity_bundle")
    instance = flow.start_instance(users["operator"].actor, "dispense_batch", "B-1", {"quantity": 5})
    weigh = flow.task(users["operator"], instance.id, "weigh")
    assert weigh.lane == "operator"
    flow.complete(users["operator"], instance.id, "weigh", {"weighed": 10.4})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    variables = flow.variables(instance.id)
    assert variables["label_text"] == "net 10.4 of 10"  # computed inside the called process
    assert variables["within"] is True                  # computed after it, from its data
    assert flow.path(instance.id, "ScriptTask", "UserTask", "CallActivity") == [
        "plan", "weigh_material", "weigh", "label", "check"]


def test_an_embedded_subprocess_runs_inside_the_instance_and_its_data_flows_on(flow, deploy, users):
    deploy("subprocess_embedded.bpmn")
    instance = flow.start_instance(users["operator"].actor, "subprocess_embedded")
    flow.complete(users["operator"], instance.id, "wipe", {"agent": "ethanol 70%", "passes": 2})
    flow.complete(users["operator"], instance.id, "verify", {"verified": True})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["cleaning_log"] == "ethanol 70% x2"
    assert "cleaning" in flow.path(instance.id)


def test_a_task_done_in_time_cancels_its_interrupting_boundary_timer(flow, deploy, users, clock):
    deploy("boundary_timer_interrupting.bpmn")
    instance = flow.start_instance(users["operator"].actor, "boundary_timer_interrupting")
    clock.advance(minutes=59)
    assert flow.run_jobs() == 0
    flow.complete(users["operator"], instance.id, "approve", {})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["outcome"] == "approved"
    assert [j.state for j in flow.instance_detail(instance.id)["jobs"]] == [JobState.CANCELLED]
    clock.advance(minutes=5)
    assert flow.run_jobs() == 0


def test_an_interrupting_boundary_timer_cancels_the_overdue_task_and_escalates(flow, deploy, users, clock):
    deploy("boundary_timer_interrupting.bpmn")
    instance = flow.start_instance(users["operator"].actor, "boundary_timer_interrupting")
    task = flow.task(users["operator"], instance.id, "approve")
    clock.advance(minutes=61)
    assert flow.run_jobs() == 1
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["outcome"] == "escalated"
    assert flow.get_task(users["operator"], task.id).state == TaskState.CANCELLED
    assert "record" not in flow.path(instance.id)


def test_a_non_interrupting_boundary_timer_adds_a_reminder_and_the_task_stays_open(flow, deploy, users,
                                                                                   clock):
    deploy("boundary_timer_noninterrupting.bpmn")
    instance = flow.start_instance(users["operator"].actor, "boundary_timer_noninterrupting")
    clock.advance(minutes=16)
    assert flow.run_jobs() == 1
    assert flow.open_elements(users["admin"], instance.id) == ["dry", "remind"]
    assert flow.open_elements(users["supervisor"], instance.id) == ["remind"]
    flow.complete(users["supervisor"], instance.id, "remind", {"checked": True})
    assert flow.status(instance.id) == InstanceStatus.WAITING
    flow.complete(users["operator"], instance.id, "dry", {"moisture": 1.2})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["moisture"] == 1.2


@pytest.mark.parametrize("hardness, outcome", [(50, "released"), (72, "deviation")])
def test_an_error_end_event_in_a_subprocess_is_caught_on_its_boundary(flow, deploy, users, hardness, outcome):
    deploy("boundary_error.bpmn")
    instance = flow.start_instance(users["operator"].actor, "boundary_error")
    flow.complete(users["operator"], instance.id, "measure", {"hardness": hardness})
    if outcome == "released":
        assert flow.status(instance.id) == InstanceStatus.COMPLETED
        assert flow.variables(instance.id)["outcome"] == "released"
        assert "deviation" not in flow.path(instance.id)
    else:
        assert flow.open_elements(users["qa"], instance.id) == ["deviation"]
        flow.complete(users["qa"], instance.id, "deviation", {"deviation_id": "DEV-9"})
        assert flow.status(instance.id) == InstanceStatus.COMPLETED
        path = flow.path(instance.id)
        assert "oos_caught" in path and "release" not in path
        assert flow.variables(instance.id)["deviation_id"] == "DEV-9"


def test_a_boundary_message_interrupts_the_running_task(flow, deploy, users):
    deploy("boundary_message.bpmn")
    other = flow.start_instance(users["operator"].actor, "boundary_message", "LINE-2")
    instance = flow.start_instance(users["operator"].actor, "boundary_message", "LINE-1")
    task = flow.task(users["operator"], instance.id, "produce")
    result = flow.correlate(users["supervisor"].actor, "stop_line", {"business_key": "LINE-1"},
                            {"reason": "foreign particle"})
    assert result == {"status": "matched", "instance_id": instance.id}
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["outcome"] == "quarantined: foreign particle"
    assert flow.get_task(users["operator"], task.id).state == TaskState.CANCELLED
    assert flow.status(other.id) == InstanceStatus.WAITING  # correlated on the business key only
    flow.complete(users["operator"], other.id, "produce", {})
    assert flow.variables(other.id)["outcome"] == "finished"
