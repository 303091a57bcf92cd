"""Flat step cost (issue 19): finished history leaves the live task tree after every step and is kept as
sealed records (``task_history``); nothing the process does changes, a restore mid-loop resumes, and a
state stored by the previous format (``spiff-1.5``) still loads and runs on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import text

from engine.errors import GmpflowError
from engine.sandbox import SandboxScriptEngine
from engine.spiff import state as spiff
from engine.spiff.parsing import ParsedDefinition
from engine.states import InstanceStatus
from tests.conftest import ROOT
from tests.test_state_serializer import ANSWER, MODELS, _parse

LOOPS = {"tests/bpmn/loop_user_steps.bpmn": {"steps": 25},
         "tests/bpmn/parallel_three_in_loop.bpmn": {"rounds": 4}}
OLD_STATE = ROOT / "tests" / "data" / "state_spiff-1.5_loop_iteration_12.json"  # saved by 9ff76e4 (main)


def _drive(model: str, parsed: ParsedDefinition, variables: dict[str, Any], *, prune: bool
           ) -> tuple[list[list[str]], BpmnWorkflow]:
    """Run ``model`` answering every waiting task with ``ANSWER``; with ``prune``, between every two steps the
    history is pruned and the workflow stored and restored (what a step through the engine does)."""
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SandboxScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(variables)
    workflow.do_engine_steps()
    waited: list[list[str]] = []
    while True:
        if prune:
            spiff.prune_history(workflow, above=0)
            workflow = spiff.load_state(spiff.dump_state(workflow), parsed.spec, parsed.subprocess_specs,
                                        SandboxScriptEngine())
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        waited.append([task.task_spec.bpmn_id for task in ready])
        if not ready:
            return waited, workflow
        ready[-1].set_data(**ANSWER)  # the last: parallel branches arrive at their join one by one
        if isinstance(ready[-1].task_spec, spiff.DeferredServiceTask):
            ready[-1].internal_data[spiff.SERVICE_RESULT] = {"booked": "B-1"}
        ready[-1].run()
        workflow.do_engine_steps()


def _variables(workflow: BpmnWorkflow) -> str:
    return json.dumps((workflow.last_task or workflow.task_tree).data, sort_keys=True, default=str)


@pytest.mark.parametrize("model", [*MODELS, *LOOPS])
def test_pruning_the_history_changes_nothing_the_process_does(model: str) -> None:
    parsed, variables = _parse(model), {**MODELS, **LOOPS}[model]
    expected, whole = _drive(model, parsed, variables, prune=False)
    waited, pruned = _drive(model, parsed, variables, prune=True)
    assert waited == expected  # the same tasks wait after every step
    assert whole.is_completed() and pruned.is_completed()
    assert _variables(pruned) == _variables(whole)


@pytest.mark.parametrize("model", LOOPS)
def test_the_live_tree_of_a_loop_does_not_grow_with_its_iterations(model: str) -> None:
    parsed = _parse(model)
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SandboxScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update({"steps": 10_000, "rounds": 10_000})
    workflow.do_engine_steps()
    sizes = []
    for step in range(1, 121):
        workflow.get_tasks(state=TaskState.READY, manual=True)[0].run()
        workflow.do_engine_steps()
        spiff.prune_history(workflow, above=0)
        if step in (30, 120):
            sizes.append((len(workflow.tasks), len(spiff.dump_state(workflow))))
    assert sizes[0][0] == sizes[1][0]  # the same tasks after 30 steps and after 120
    assert sizes[1][1] < sizes[0][1] * 1.1  # the state text: only the counter's digits grow


def test_the_removed_tasks_are_returned_in_the_state_format_under_their_old_parents() -> None:
    parsed = _parse("tests/bpmn/loop_user_steps.bpmn")
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SandboxScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update({"steps": 5})
    workflow.do_engine_steps()
    workflow.get_tasks(state=TaskState.READY, manual=True)[0].run()
    workflow.do_engine_steps()
    before = json.loads(spiff.dump_state(workflow))["tasks"]
    removed = json.loads(spiff.prune_history(workflow, above=0) or "[]")
    assert [group["workflow"] for group in removed] == [None]
    assert removed[0]["spec"] == "loop_user_steps"
    for task_id, task in removed[0]["tasks"].items():
        assert task == before[task_id]  # as the whole state held it
        assert task["state"] in (TaskState.COMPLETED, TaskState.CANCELLED)
    after = json.loads(spiff.dump_state(workflow))["tasks"]
    assert set(after) | set(removed[0]["tasks"]) == set(before) and not set(after) & set(removed[0]["tasks"])
    assert spiff.prune_history(workflow, above=0) is None  # nothing more to remove until the next step


def test_a_state_stored_by_the_previous_format_loads_and_runs_on() -> None:
    parsed = _parse("tests/bpmn/loop_user_steps.bpmn")
    workflow = spiff.load_state(OLD_STATE.read_text(), parsed.spec, parsed.subprocess_specs,
                                SandboxScriptEngine(), "spiff-1.5")
    assert [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY, manual=True)] == ["step"]
    assert workflow.last_task.data["count"] == 12
    whole = len(workflow.tasks)
    assert spiff.prune_history(workflow, above=0) is not None and len(workflow.tasks) < whole / 5
    while ready := workflow.get_tasks(state=TaskState.READY, manual=True):
        ready[0].run()
        workflow.do_engine_steps()
        spiff.prune_history(workflow, above=0)
    assert workflow.is_completed() and workflow.last_task.data["count"] == 40


def test_the_migrations_lead_from_every_known_format_to_the_current_one() -> None:
    for version in spiff.MIGRATIONS:
        assert spiff.migrate({"tasks": {}}, version) == {"tasks": {}}
    assert spiff.MIGRATIONS["spiff-1.5"] == ("gmpflow-2", spiff.spiff_1_5_to_gmpflow_2)


def test_a_state_of_an_unknown_format_is_refused_not_guessed() -> None:
    parsed = _parse("tests/bpmn/loop_user_steps.bpmn")
    with pytest.raises(GmpflowError) as refused:
        spiff.load_state(OLD_STATE.read_text(), parsed.spec, parsed.subprocess_specs, SandboxScriptEngine(),
                         "gmpflow-99")
    assert refused.value.code == "state_version_unknown"


# -- through the engine ----------------------------------------------------------------------------------


def _state_length(flow: Any, instance_id: int) -> int:
    with flow.database.query() as db:
        return len(db.first("SELECT state FROM process_instance WHERE id = :id", {"id": instance_id})[0])


def test_a_loop_instance_keeps_a_flat_state_and_its_whole_history(flow, deploy, users) -> None:
    deploy("loop_user_steps.bpmn")
    operator = users["operator"]
    instance = flow.start_instance(operator.actor, "loop_user_steps", "LOOP-1", {"steps": 70})
    lengths = []
    for _ in range(70):
        flow.complete(operator, instance.id, "step")
        lengths.append(_state_length(flow, instance.id))
    # flat: the state holds the live tree, pruned once it holds more than PRUNE_ABOVE tasks (about every 23
    # iterations of this loop), so steps 36-70 store no more than steps 1-35 did
    assert max(lengths[35:]) <= max(lengths[:35]) * 1.05 and min(lengths[35:]) < lengths[34]
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.path(instance.id, "UserTask").count("step") == 70  # the history: records, then the tree
    assert flow.path(instance.id, "ScriptTask").count("count_up") == 70
    assert flow.variables(instance.id)["count"] == 70
    with flow.database.query() as db:
        kept = db.first("SELECT COUNT(*) FROM task_history WHERE instance_id = :id", {"id": instance.id})
    assert kept is not None and kept[0] >= 2
    assert flow.verify_audit().ok


def test_a_restore_mid_loop_resumes(flow, deploy, users) -> None:
    deploy("loop_user_steps.bpmn")
    operator = users["operator"]
    instance = flow.start_instance(operator.actor, "loop_user_steps", None, {"steps": 40})
    for _ in range(30):  # past the first pruning
        flow.complete(operator, instance.id, "step")
    flow.restart()  # a new process: the workflow comes from the pruned state
    for _ in range(10):
        flow.complete(operator, instance.id, "step")
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["count"] == 40
    assert flow.path(instance.id, "UserTask").count("step") == 40


def test_task_history_is_append_only_and_a_changed_row_fails_verification(flow, deploy, users) -> None:
    deploy("loop_user_steps.bpmn")
    instance = flow.start_instance(users["operator"].actor, "loop_user_steps", None, {"steps": 30})
    for _ in range(30):
        flow.complete(users["operator"], instance.id, "step")
    with pytest.raises(Exception, match="append-only"), flow.database.engine.begin() as connection:
        connection.execute(text("UPDATE task_history SET tasks = '[]'"))
    with pytest.raises(Exception, match="append-only"), flow.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM task_history"))
    # someone who gets past the triggers is still found out: the row no longer matches its MAC
    postgres = flow.database.is_postgres
    with flow.database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE task_history DISABLE TRIGGER USER" if postgres
                                else "DROP TRIGGER task_history_no_update"))
        connection.execute(text("UPDATE task_history SET tasks = '[]' "
                                "WHERE id = (SELECT MIN(id) FROM task_history)"))
        if postgres:  # the next test reuses the PostgreSQL database
            connection.execute(text("ALTER TABLE task_history ENABLE TRIGGER USER"))
    report = flow.verify_audit()
    assert not report.ok and report.table == "task_history"
