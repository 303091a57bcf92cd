"""A task that names no role is open to any signed-in user. gmpflow runs it (lane-less models are valid
BPMN), but lint and deploy name each such task, so that a process owner chooses it knowingly; a task with a
lane (its own or its subprocess's), a candidateRoles property or a Camunda candidate group is not named."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.definitions.bundle import Bundle
from tests.test_lint_interchange import model

IN_LANE = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="operator"><bpmn:flowNodeRef>{}</bpmn:flowNodeRef>'
           '</bpmn:lane></bpmn:laneSet>')
CANDIDATE_ROLES = ('<bpmn:userTask id="t"><bpmn:extensionElements><spiffworkflow:properties>'
                   '<spiffworkflow:property name="candidateRoles" value="\'qa\'"/></spiffworkflow:properties>'
                   '</bpmn:extensionElements></bpmn:userTask>')
SUBPROCESS = ('<bpmn:subProcess id="t"><bpmn:startEvent id="ss"/><bpmn:userTask id="inner"/>'
              '<bpmn:endEvent id="se"/><bpmn:sequenceFlow id="sf1" sourceRef="ss" targetRef="inner"/>'
              '<bpmn:sequenceFlow id="sf2" sourceRef="inner" targetRef="se"/></bpmn:subProcess>')


def open_task_ids(engine, files: dict[str, str]) -> list[str | None]:
    return [n.element_id for n in engine.lint_notices(Bundle(dict(files))) if n.code == "open_to_any_user"]


@pytest.mark.parametrize("tag", ["userTask", "manualTask", "task"])
def test_a_task_for_a_person_in_no_lane_is_named_as_open_to_any_user(engine, tag):
    files = model(f'<bpmn:{tag} id="t"/>')
    assert open_task_ids(engine, files) == ["t"]
    assert engine.lint_bundle(Bundle(dict(files))) == []  # named, never refused


def test_a_task_in_a_subprocess_without_a_lane_is_named_by_its_own_id(engine):
    assert open_task_ids(engine, model(SUBPROCESS)) == ["inner"]


@pytest.mark.parametrize("files", [
    model('<bpmn:userTask id="t"/>', lanes=IN_LANE.format("t")),
    model(SUBPROCESS, lanes=IN_LANE.format("t")),
    model(CANDIDATE_ROLES),
    model('<bpmn:userTask id="t" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
          'camunda:candidateGroups="operator"/>'),
    model('<bpmn:scriptTask id="t"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>'),
], ids=["own lane", "subprocess's lane", "candidateRoles", "candidate group", "no person"])
def test_a_task_that_names_its_role_or_needs_no_person_is_not_named(engine, files):
    assert open_task_ids(engine, files) == []


def test_a_lane_without_a_name_names_no_role(engine):
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l"><bpmn:flowNodeRef>t</bpmn:flowNodeRef></bpmn:lane>'
             '</bpmn:laneSet>')
    assert open_task_ids(engine, model('<bpmn:userTask id="t"/>', lanes=lanes)) == ["t"]


def test_gmpflow_lint_prints_the_open_task_and_still_exits_0(engine, tmp_path, monkeypatch):
    for name, text in model('<bpmn:userTask id="t"/>').items():
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("GMPFLOW_DATABASE_URL", engine.db.url)
    result = CliRunner().invoke(main, ["lint", str(tmp_path / "p.bpmn")])
    assert result.exit_code == 0, result.output
    assert "[t]: No lane, candidateRoles or candidate group names who may do this task" in result.output
    assert "(open_to_any_user)" in result.output
