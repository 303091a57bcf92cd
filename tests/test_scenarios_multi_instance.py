"""Scenarios: sequential and parallel multi-instance (by cardinality and over a collection), and the
long-running guard: 1,000 loop iterations and a 1,000-fold sequential multi-instance complete
(SpiffWorkflow 3.2.0 silently stopped finding tasks past tree depth 1000; engine/spiff/state.py
raises its iterators' default depth)."""

from __future__ import annotations

import pytest

from engine.states import InstanceStatus


def test_a_sequential_multi_instance_by_cardinality_opens_one_task_after_the_other(flow, deploy, users):
    deploy("mi_sequential_cardinality.bpmn")
    instance = flow.start_instance(users["operator"].actor, "mi_sequential_cardinality", None, {"drums": 3})
    for weight in (10.5, 11.0, 9.5):
        tasks = flow.open_tasks(users["operator"], instance.id)
        assert [t.element_id for t in tasks] == ["weigh_drum"]  # one at a time
        flow.complete_task(users["operator"], tasks[0].id, {"weight": weight})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    variables = flow.variables(instance.id)
    assert variables["weights"] == [10.5, 11.0, 9.5]
    assert variables["total_weight"] == 31.0


def test_a_parallel_multi_instance_over_a_collection_opens_every_task_at_once(flow, deploy, users):
    deploy("mi_parallel_collection.bpmn")
    lots = ["A1", "B2", "C3"]
    instance = flow.start_instance(users["operator"].actor, "mi_parallel_collection", None, {"lots": lots})
    tasks = flow.open_tasks(users["qa"], instance.id)
    assert [t.element_id for t in tasks] == ["inspect_lot"] * 3
    for task, verdict in zip(reversed(tasks), ["pass", "fail", "pass"], strict=True):  # in any order
        flow.complete_task(users["qa"], task.id, {"verdict": verdict})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    variables = flow.variables(instance.id)
    assert sorted(variables["verdicts"]) == ["fail", "pass", "pass"] and len(variables["verdicts"]) == 3
    assert variables["labels"] == ["LBL-A1", "LBL-B2", "LBL-C3"]


@pytest.mark.slow
def test_a_loop_of_1000_iterations_completes(flow, deploy, users):
    deploy("loop_1000.bpmn")
    instance = flow.start_instance(users["operator"].actor, "loop_1000", None,
                                   {"counter": 0, "iterations": 1000})
    assert flow.open_elements(users["operator"], instance.id) == ["confirm"]
    assert flow.variables(instance.id)["counter"] == 1000
    flow.complete(users["operator"], instance.id, "confirm", {})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.path(instance.id, "ScriptTask").count("increment") == 1000


def test_a_sequential_multi_instance_of_1000_iterations_completes(flow, deploy, users):
    deploy("mi_sequential_1000.bpmn")
    instance = flow.start_instance(users["operator"].actor, "mi_sequential_1000", None, {"iterations": 1000})
    assert flow.open_elements(users["operator"], instance.id) == ["confirm"]
    assert flow.variables(instance.id)["ticks"] == [1] * 1000
    flow.complete(users["operator"], instance.id, "confirm", {})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
