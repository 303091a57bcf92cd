"""Scenarios: user, script, service, business-rule (DMN) and manual tasks, in lanes that name roles."""

from __future__ import annotations

import pytest

from engine.errors import PermissionDenied
from engine.states import InstanceStatus


@pytest.mark.parametrize("weight, grade", [(98, "A"), (85, "B"), (40, "reject")])
def test_every_task_kind_runs_in_order_and_the_decision_table_grades_the_yield(flow, deploy, users, weight,
                                                                               grade):
    deploy("task_kinds_bundle")
    instance = flow.start_instance(users["operator"].actor, "task_kinds", "LOT-1", {"planned": 100})
    assert flow.status(instance.id) == InstanceStatus.WAITING
    # the first task is in the operator lane
    assert flow.open_elements(users["supervisor"], instance.id) == []

    flow.complete(users["operator"], instance.id, "weigh", {"weight": weight})
    assert flow.status(instance.id) == InstanceStatus.RUNNING  # the service call is a due job
    assert flow.open_elements(users["operator"], instance.id) == []
    assert flow.run_jobs() == 1

    inspect = flow.task(users["supervisor"], instance.id, "inspect")
    assert inspect.candidate_roles == ["supervisor"]
    with pytest.raises(PermissionDenied):
        flow.complete_task(users["operator"], inspect.id, {})
    flow.complete(users["supervisor"], instance.id, "inspect", {"line_clear": True})

    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.path(instance.id, "UserTask", "ScriptTask", "BusinessRuleTask", "DeferredServiceTask",
                     "ManualTask") == ["weigh", "compute", "grade_yield", "book", "inspect"]
    variables = flow.variables(instance.id)
    assert variables["yield_pct"] == float(weight)
    assert variables["grade"] == grade
    assert variables["booked"] == {"yield_pct": float(weight), "grade": grade}
    assert variables["line_clear"] is True
