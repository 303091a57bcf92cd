"""A file drawing several top-level executable processes (independent pools of one collaboration, as
SpiffWorkflow's ``user_task_variable.bpmn``) names no process by itself: deploy is told which one it runs
(``process``, ``gmpflow deploy --process``), as SpiffWorkflow's caller names the process it runs; without
the choice it is refused naming the processes, and a choice that is no such process is refused too."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.definitions.bundle import Bundle
from engine.errors import DefinitionError
from engine.services import Gmpflow
from engine.states import InstanceStatus
from tests.conftest import ADMIN
from tests.test_definitions import stored_deployments


def pool(pid: str, task: str) -> str:
    return f"""<bpmn:process id="{pid}" name="Pool {pid}" isExecutable="true">
<bpmn:startEvent id="{pid}_start"><bpmn:outgoing>{pid}_f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:userTask id="{task}" name="Task of {pid}"><bpmn:incoming>{pid}_f1</bpmn:incoming>
<bpmn:outgoing>{pid}_f2</bpmn:outgoing></bpmn:userTask>
<bpmn:endEvent id="{pid}_end"><bpmn:incoming>{pid}_f2</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="{pid}_f1" sourceRef="{pid}_start" targetRef="{task}"/>
<bpmn:sequenceFlow id="{pid}_f2" sourceRef="{task}" targetRef="{pid}_end"/>
</bpmn:process>"""


TWO_POOLS = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
<bpmn:collaboration id="c"><bpmn:participant id="p2" processRef="two"/>
<bpmn:participant id="p1" processRef="one"/></bpmn:collaboration>
{pool("two", "task_two")}{pool("one", "task_one")}
</bpmn:definitions>"""


def bundle() -> Bundle:
    return Bundle({"pools.bpmn": TWO_POOLS})


def test_without_a_choice_the_file_is_refused_naming_its_processes_and_nothing_is_stored(engine: Gmpflow):
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(ADMIN, bundle=bundle())
    problem = refused.value.context["problems"][0]
    assert problem["code"] == "several_processes"
    assert "two, one" in problem["message"] and "--process" in problem["message"]
    assert [p.code for p in engine.lint_bundle(bundle())] == ["several_processes"]
    assert stored_deployments(engine) == 0


def test_a_choice_that_is_no_top_level_executable_process_is_refused(engine: Gmpflow):
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(ADMIN, bundle=bundle(), process="three")
    assert refused.value.context["problems"][0]["code"] == "process_not_found"
    assert "'three'" in refused.value.context["problems"][0]["message"]
    assert stored_deployments(engine) == 0


def test_the_chosen_process_deploys_under_its_key_and_runs_after_a_restart(engine: Gmpflow, users):
    one, _ = engine.deploy(ADMIN, bundle=bundle(), process="one")
    two, _ = engine.deploy(ADMIN, bundle=bundle(), process="two")
    assert (one.key, one.name, two.key) == ("one", "Pool one", "two")
    instance = engine.start_instance(users["operator"].actor, "one", "A")
    # a new engine on the same database parses the stored files again: the deployment's key picks the pool
    restarted = Gmpflow(engine.db, engine.clock, change_control="off")
    [task] = restarted.list_tasks(users["operator"], instance_id=instance.id)
    assert task.element_id == "task_one"
    restarted.complete_task(users["operator"], task.id, {})
    assert restarted.instance_detail(instance.id)["instance"].status == InstanceStatus.COMPLETED


def test_the_cli_lints_and_deploys_the_process_it_is_told(engine: Gmpflow, tmp_path, monkeypatch):
    from engine import cli

    made: list[Gmpflow] = []
    real = cli._engine
    monkeypatch.setattr("engine.cli._engine", lambda: made.append(real()) or made[-1])
    path = tmp_path / "pools.bpmn"
    path.write_text(TWO_POOLS)
    monkeypatch.setenv("GMPFLOW_DATABASE_URL", engine.db.url)
    monkeypatch.setenv("GMPFLOW_AUDIT_KEY_FILE", str(engine.db.audit_key.path))
    monkeypatch.setenv("GMPFLOW_CHANGE_CONTROL", "off")
    refused = CliRunner().invoke(main, ["lint", str(path)])
    assert refused.exit_code == 1 and "several_processes" in refused.output
    linted = CliRunner().invoke(main, ["lint", "--process", "two", str(path)])
    assert linted.exit_code == 0 and "who may start two" in linted.output
    deployed = CliRunner().invoke(main, ["deploy", "--process", "two", str(path)])
    assert deployed.exit_code == 0, deployed.output
    assert deployed.output.startswith("two 1 active")
    for gmp in made:
        gmp.db.dispose()
