"""The lint says yes only to what runs and no only with a reason: valid BPMN that gmpflow runs (data
input/output sets, a loop condition, another engine's extensions) lints clean, with what it reads past named;
a timer literal without quotes, which would fail with a NameError when the timer starts, is refused before
deployment with the quoted form to write; a lane naming an unknown role says how to create it."""

from __future__ import annotations

import pytest

from engine.definitions.bundle import Bundle
from tests.conftest import ADMIN, principal

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" '
        'targetNamespace="http://bpmn.io/schema/bpmn">\n')


def model(body: str, flows: str = "s,t,e", lanes: str = "") -> dict[str, str]:
    """A process start ``s`` -> ``t`` -> end ``e`` around the elements in ``body``."""
    steps = flows.split(",")
    sequence = "".join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
                       for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False)))
    return {"p.bpmn": f'{HEAD}<bpmn:process id="p" isExecutable="true">{lanes}<bpmn:startEvent id="s"/>'
                      f'{body}<bpmn:endEvent id="e"/>{sequence}</bpmn:process></bpmn:definitions>'}


def timer(kind: str, value: str) -> dict[str, str]:
    return model(f'<bpmn:intermediateCatchEvent id="t"><bpmn:timerEventDefinition id="td">'
                 f'<bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')


DATA_SETS = model('<bpmn:scriptTask id="t"><bpmn:ioSpecification><bpmn:dataInput id="in_x"/>'
                  '<bpmn:dataOutput id="out_y"/><bpmn:inputSet><bpmn:dataInputRefs>in_x</bpmn:dataInputRefs>'
                  '</bpmn:inputSet><bpmn:outputSet><bpmn:dataOutputRefs>out_y</bpmn:dataOutputRefs>'
                  '</bpmn:outputSet></bpmn:ioSpecification><bpmn:script>out_y = in_x * 2</bpmn:script>'
                  '</bpmn:scriptTask>')
LOOP = model('<bpmn:scriptTask id="t"><bpmn:standardLoopCharacteristics><bpmn:loopCondition>count &lt; 3'
             '</bpmn:loopCondition></bpmn:standardLoopCharacteristics>'
             '<bpmn:script>count = count + 1</bpmn:script></bpmn:scriptTask>', flows="s,t,e")
VENDOR = model('<bpmn:task id="t" zeebe:unused="x"><bpmn:extensionElements>'
               '<zeebe:taskHeaders><zeebe:header key="a" value="b"/></zeebe:taskHeaders>'
               '<spiffworkflow:instructionsForEndUser>Weigh it.</spiffworkflow:instructionsForEndUser>'
               '</bpmn:extensionElements></bpmn:task>')


@pytest.mark.parametrize("files", [DATA_SETS, LOOP, VENDOR], ids=["data sets", "loop condition", "vendor"])
def test_valid_models_gmpflow_runs_lint_clean(engine, files):
    assert engine.lint_bundle(Bundle(dict(files))) == []


def test_a_loop_condition_runs_the_task_again_while_it_holds(engine, deploy):
    deploy(LOOP)
    instance = engine.start_instance(ADMIN, "p", "LOOP-1", {"count": 0})
    assert (instance.status, engine.instance_detail(instance.id)["variables"]["count"]) == ("completed", 3)


def test_extensions_of_other_engines_are_named_as_ignored_not_refused(engine):
    notices = engine.lint_notices(Bundle(dict(VENDOR)))
    assert [(n.element_id, n.code, n.message) for n in notices] == [
        ("t", "ignored_extension",
         "gmpflow does not run zeebe:unused, zeebe:taskHeaders, spiffworkflow:instructionsForEndUser of this "
         "element: ignored."),
        ("t", "open_to_any_user",  # the task lies in no lane (tests/test_open_tasks.py)
         "No lane, candidateRoles or candidate group names who may do this task: any signed-in user may "
         "claim, complete and sign it. Put it in a lane naming a role to restrict it.")]


@pytest.mark.parametrize("kind,value", [("timeDuration", "P7D"), ("timeCycle", "R6/PT1H"),
                                        ("timeDate", "2026-01-01T00:00:00Z"), ("timeDuration", "PT1H30M")])
def test_a_timer_literal_without_quotes_is_refused_with_the_quoted_form(engine, kind, value):
    problems = engine.lint_bundle(Bundle(timer(kind, value)))
    assert [(p.element_id, p.code) for p in problems] == [("t", "timer_unquoted")]
    assert f"write '{value}' (in quotes)" in problems[0].message
    assert engine.lint_bundle(Bundle(timer(kind, f"'{value}'"))) == []


def test_a_timer_naming_a_variable_is_not_a_literal(engine):
    assert engine.lint_bundle(Bundle(timer("timeDuration", "wait_for"))) == []


def test_a_lane_naming_an_unknown_role_says_how_to_create_it_and_lints_clean_once_it_exists(engine):
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="validation_lead"><bpmn:flowNodeRef>t'
             '</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>')
    files = model('<bpmn:userTask id="t"/>', lanes=lanes)
    problems = engine.lint_bundle(Bundle(dict(files)))
    assert [(p.element_id, p.code) for p in problems] == [("l", "unknown_role")]
    assert ('gmpflow roles add validation_lead --description "..."` or POST /api/v1/roles'
            in problems[0].message)
    engine.add_role(ADMIN, "validation_lead", "Leads process validation", "test: a new role for a lane")
    assert engine.lint_bundle(Bundle(dict(files))) == []


def test_a_lane_written_as_modelers_write_names_the_lowercase_role_and_its_task_goes_to_that_role(
        engine, deploy, users):
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="Validation Lead"><bpmn:flowNodeRef>t'
             '</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>')
    files = model('<bpmn:userTask id="t"/>', lanes=lanes)
    problems = engine.lint_bundle(Bundle(dict(files)))
    assert [(p.element_id, p.code) for p in problems] == [("l", "unknown_role")]
    assert "The lane 'Validation Lead' (read as the role 'validation_lead') names no known role" in (
        problems[0].message)
    assert "gmpflow roles add validation_lead" in problems[0].message
    engine.add_role(ADMIN, "validation_lead", "Leads process validation", "test: a new role for a lane")
    deploy(files)
    instance = engine.start_instance(ADMIN, "p", "V-1")
    lead = principal("vera", "validation_lead")
    assert [(t.element_id, t.lane) for t in engine.list_tasks(lead, instance_id=instance.id)] == [
        ("t", "validation_lead")]
    assert engine.list_tasks(users["operator"], instance_id=instance.id) == []
