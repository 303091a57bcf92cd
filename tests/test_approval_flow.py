"""The demo approval process, end to end through the engine's services."""

from __future__ import annotations

import pytest

from engine.errors import Conflict, PermissionDenied, ValidationFailed
from engine.states import InstanceStatus, TaskState
from tests.conftest import ROOT

DEMO = ROOT / "gmp" / "processes" / "demo_approval"


def open_task(engine, who, instance_id):  # type: ignore[no-untyped-def]
    tasks = engine.list_tasks(who, instance_id=instance_id)
    assert len(tasks) == 1, [t.name for t in tasks]
    return tasks[0]


def test_an_accepted_request_runs_to_completion_with_the_service_result(engine, deploy, users):
    deploy(DEMO)
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "REQ-1")
    assert instance.status == InstanceStatus.WAITING
    engine.complete_task(users["operator"], open_task(engine, users["operator"], instance.id).id,
                         {"quantity": 5, "comment": "gloves"})
    engine.complete_task(users["supervisor"], open_task(engine, users["supervisor"], instance.id).id,
                         {"accepted": True})
    engine.complete_task(users["qa"], open_task(engine, users["qa"], instance.id).id, {"accepted": True})
    assert engine.run_jobs_once() == 1
    detail = engine.instance_detail(instance.id)
    assert detail["instance"].status == InstanceStatus.COMPLETED
    assert detail["variables"]["notified"] == {"quantity": 5, "comment": "gloves"}
    assert [h["element_id"] for h in detail["history"] if h["type"] == "UserTask"] == ["request", "review",
                                                                                       "approve"]
    assert engine.verify_audit().ok


def test_a_completed_task_cannot_be_completed_again(engine, deploy, users):
    deploy(DEMO)
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "REQ-2")
    task = open_task(engine, users["operator"], instance.id)
    engine.complete_task(users["operator"], task.id, {"quantity": 5, "comment": "x"})
    events_before = len(engine.audit_events(limit=1000))
    with pytest.raises(Conflict) as err:
        engine.complete_task(users["operator"], task.id, {"quantity": 6, "comment": "y"})
    assert err.value.code == "task_not_open"
    assert len(engine.audit_events(limit=1000)) == events_before


def test_a_task_claimed_by_someone_else_cannot_be_completed(engine, deploy, users):
    deploy(DEMO)
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "REQ-3")
    task = open_task(engine, users["operator"], instance.id)
    engine.claim_task(users["operator"], task.id)
    with pytest.raises(Conflict) as err:
        engine.complete_task(users["operator2"], task.id, {"quantity": 5, "comment": "x"})
    assert err.value.code == "task_claimed_by_other"
    engine.unclaim_task(users["operator"], task.id)
    engine.complete_task(users["operator2"], task.id, {"quantity": 5, "comment": "x"})


def test_only_holders_of_the_lane_role_may_claim_or_complete(engine, deploy, users):
    deploy(DEMO)
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "REQ-4")
    task = open_task(engine, users["operator"], instance.id)
    for action in (lambda: engine.claim_task(users["qa"], task.id),
                   lambda: engine.complete_task(users["qa"], task.id, {"quantity": 5, "comment": "x"})):
        with pytest.raises(PermissionDenied) as err:
            action()
        assert err.value.code == "role_required"
    assert engine.get_task(users["operator"], task.id).state == TaskState.OPEN


@pytest.mark.parametrize("data, field", [
    ({"comment": "x"}, "quantity"),
    ({"quantity": 0, "comment": "x"}, "quantity"),
    ({"quantity": 1001, "comment": "x"}, "quantity"),
    ({"quantity": "many", "comment": "x"}, "quantity"),
    ({"quantity": 5}, "comment"),
    ({"quantity": 5, "comment": "x" * 501}, "comment"),
], ids=["missing", "below-min", "above-max", "not-a-number", "required-text", "too-long"])
def test_form_data_out_of_limits_is_refused_per_field_and_the_task_stays_open(engine, deploy, users, data,
                                                                              field):
    deploy(DEMO)
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "REQ-5")
    task = open_task(engine, users["operator"], instance.id)
    with pytest.raises(ValidationFailed) as err:
        engine.complete_task(users["operator"], task.id, data)
    assert field in err.value.errors
    assert engine.get_task(users["operator"], task.id).state == TaskState.OPEN


@pytest.mark.parametrize("quantity", [float("nan"), float("inf"), "NaN", "-Infinity", "1e999"],
                         ids=["nan", "inf", "nan-text", "minus-infinity-text", "overflow-text"])
def test_a_non_finite_number_is_refused_even_from_a_direct_caller(engine, deploy, users, quantity):
    deploy(DEMO)
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "REQ-NaN")
    task = open_task(engine, users["operator"], instance.id)
    with pytest.raises(ValidationFailed) as err:
        engine.complete_task(users["operator"], task.id, {"quantity": quantity, "comment": "x"})
    assert "quantity" in err.value.errors
