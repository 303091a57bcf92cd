"""Deploying process bundles: lint with file, element and line; content hashing; versions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.errors import DefinitionError, NotFound
from engine.services import Gmpflow
from engine.states import DeploymentStatus, InstanceStatus
from engine.store import Database
from engine.store.models import Deployment
from tests.conftest import ADMIN, ROOT

DEMO = ROOT / "gmp" / "processes" / "demo_approval"
HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
"""


def process(body: str, pid: str = "p", lanes: str = "") -> str:
    return f"""{HEAD}<bpmn:process id="{pid}" isExecutable="true">{lanes}
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
{body}
<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>
<bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="end"/>
</bpmn:process></bpmn:definitions>"""


def user_task(props: str = "") -> str:
    ext = f"<bpmn:extensionElements><spiffworkflow:properties>{props}</spiffworkflow:properties>" \
          f"</bpmn:extensionElements>" if props else ""
    return f'<bpmn:userTask id="t1" name="Do it">{ext}<bpmn:incoming>f1</bpmn:incoming>' \
           f'<bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>'


def stored_deployments(engine: Gmpflow) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(Deployment)) or 0


LINT_CASES = {
    "unknown-form": (process(user_task('<spiffworkflow:property name="formId" value="nope"/>')),
                     "unknown_form", "t1"),
    "unknown-operation": (process('<bpmn:serviceTask id="t1"><bpmn:extensionElements>'
                                  '<spiffworkflow:serviceTaskOperator id="erp.nothing"/>'
                                  '</bpmn:extensionElements>'
                                  '<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
                                  '</bpmn:serviceTask>'), "unknown_operation", "t1"),
    "unknown-role": (process(user_task(), lanes='<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="wizard">'
                                                '<bpmn:flowNodeRef>t1</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'),
                     "unknown_role", "l1"),
    "script-escape": (process('<bpmn:scriptTask id="t1"><bpmn:incoming>f1</bpmn:incoming>'
                              '<bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>import os</bpmn:script>'
                              '</bpmn:scriptTask>'), "script_rejected", "t1"),
    "script-syntax": (process('<bpmn:scriptTask id="t1"><bpmn:incoming>f1</bpmn:incoming>'
                              '<bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>x = = 1</bpmn:script>'
                              '</bpmn:scriptTask>'), "script_rejected", "t1"),
    "unsupported-element": (process('<bpmn:complexGateway id="t1"><bpmn:incoming>f1</bpmn:incoming>'
                                    '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:complexGateway>'),
                            "unsupported_element", "t1"),
    # what a file drawn for Camunda carries that gmpflow cannot run, each named with its element and line
    "camunda-juel-expression": (process('<bpmn:intermediateCatchEvent id="t1">'
                                        '<bpmn:incoming>f1</bpmn:incoming>'
                                        '<bpmn:outgoing>f2</bpmn:outgoing><bpmn:timerEventDefinition>'
                                        '<bpmn:timeDuration>${wait}</bpmn:timeDuration>'
                                        '</bpmn:timerEventDefinition>'
                                        '</bpmn:intermediateCatchEvent>'), "foreign_expression", "t1"),
    "camunda-feel-expression": (process('<bpmn:intermediateCatchEvent id="t1">'
                                        '<bpmn:incoming>f1</bpmn:incoming>'
                                        '<bpmn:outgoing>f2</bpmn:outgoing><bpmn:timerEventDefinition>'
                                        '<bpmn:timeDuration>= wait</bpmn:timeDuration>'
                                        '</bpmn:timerEventDefinition>'
                                        '</bpmn:intermediateCatchEvent>'), "foreign_expression", "t1"),
    "service-task-without-operation": (process('<bpmn:serviceTask id="t1"><bpmn:incoming>f1</bpmn:incoming>'
                                               '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>'),
                                       "missing_operation", "t1"),
    "business-rule-task-without-decision": (process('<bpmn:businessRuleTask id="t1"><bpmn:incoming>f1'
                                                    '</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
                                                    '</bpmn:businessRuleTask>'), "missing_decision", "t1"),
    "call-activity-without-process": (process('<bpmn:callActivity id="t1"><bpmn:incoming>f1</bpmn:incoming>'
                                              '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>'),
                                      "missing_called_element", "t1"),
    "data-store": (process(user_task() + '<bpmn:dataStoreReference id="ds" name="ERP"/>'),
                   "unsupported_element", "ds"),
    "unknown-meaning": (process(user_task(
                            '<spiffworkflow:property name="signature.meaning" value="Liked"/>')),
                        "unknown_signature_meaning", "t1"),
    "distinct-from-unknown-task": (process(user_task(
        '<spiffworkflow:property name="signature.meaning" value="Approved"/>'
        '<spiffworkflow:property name="signature.distinctFrom" value="performer:ghost"/>')),
        "bad_distinct_from", "t1"),
}


@pytest.mark.parametrize("case", LINT_CASES, ids=list(LINT_CASES))
def test_lint_names_file_element_and_line_and_deploy_stores_nothing(engine, tmp_path, case):
    xml, code, element = LINT_CASES[case]
    (tmp_path / "model.bpmn").write_text(xml)
    problems = engine.lint([tmp_path / "model.bpmn"])
    assert [p.code for p in problems] == [code], [str(p) for p in problems]
    assert problems[0].file == "model.bpmn"
    assert problems[0].element_id == element
    assert isinstance(problems[0].line, int) and problems[0].line > 1
    with pytest.raises(DefinitionError) as err:
        engine.deploy(ADMIN, [tmp_path / "model.bpmn"])
    assert err.value.code == "lint_failed"
    assert stored_deployments(engine) == 0


HOSTILE = {
    "xxe": '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&x;</bpmn:definitions>',
    "billion-laughs": '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">'
                      '<!ENTITY c "&b;&b;&b;&b;">]><bpmn:definitions '
                      'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&c;</bpmn:definitions>',
    "external-dtd": '<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/x.dtd">'
                    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
    "malformed": '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"><bpmn:process>',
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_or_malformed_xml_is_refused_with_a_clear_code_and_nothing_is_stored(engine, tmp_path, case):
    (tmp_path / "evil.bpmn").write_text(HOSTILE[case])
    events_before = len(engine.audit_events(limit=1000))
    with pytest.raises(DefinitionError) as err:
        engine.deploy(ADMIN, [tmp_path / "evil.bpmn"])
    assert err.value.code in ("xml_forbidden", "xml_malformed")
    assert err.value.file == "evil.bpmn"
    assert stored_deployments(engine) == 0
    assert len(engine.audit_events(limit=1000)) == events_before


def test_unchanged_content_creates_no_new_version_and_changed_content_creates_the_next(engine, tmp_path):
    first, created = engine.deploy(ADMIN, [DEMO])
    assert (first.version, created) == (1, True)
    again, created = engine.deploy(ADMIN, [DEMO])
    assert (again.id, created) == (first.id, False)
    changed = tmp_path / "demo"
    changed.mkdir()
    text = (DEMO / "demo_approval.bpmn").read_text().replace('name="Review the request"', 'name="Review it"')
    (changed / "demo_approval.bpmn").write_text(text)
    second, created = engine.deploy(ADMIN, [changed])
    assert (second.version, created, second.status) == (2, True, DeploymentStatus.ACTIVE)
    assert engine.get_deployment(first.id).status == DeploymentStatus.RETIRED


def test_a_changed_form_is_a_changed_bundle(engine, tmp_path):
    engine.deploy(ADMIN, [DEMO])
    form = (ROOT / "gmp" / "forms" / "demo_request.form").read_text().replace('"max": 1000', '"max": 2000')
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "demo_approval.bpmn").write_text((DEMO / "demo_approval.bpmn").read_text())
    (bundle / "demo_request.form").write_text(form)
    dep, created = engine.deploy(ADMIN, [bundle])
    assert (dep.version, created) == (2, True)


def test_running_instances_finish_on_the_version_they_started_with(engine, tmp_path, users):
    engine.deploy(ADMIN, [DEMO])
    old = engine.start_instance(users["operator"].actor, "demo_approval", "OLD")
    changed = tmp_path / "v2"
    changed.mkdir()
    (changed / "demo_approval.bpmn").write_text((DEMO / "demo_approval.bpmn").read_text()
                                                .replace('name="Describe the request"', 'name="Describe v2"'))
    engine.deploy(ADMIN, [changed])
    new = engine.start_instance(users["operator"].actor, "demo_approval", "NEW")
    names = {t.instance_id: t.name for t in engine.list_tasks(users["operator"])}
    assert names == {old.id: "Describe the request", new.id: "Describe v2"}
    task = engine.list_tasks(users["operator"], instance_id=old.id)[0]
    engine.complete_task(users["operator"], task.id, {"quantity": 1, "comment": "still v1"})
    assert engine.instance_detail(old.id)["instance"].version == 1


def test_with_change_control_required_a_deployment_is_a_draft_that_cannot_start(database, clock, users):
    engine = Gmpflow(database, clock, change_control="required")
    engine.record_start()
    dep, _ = engine.deploy(ADMIN, [DEMO])
    assert dep.status == DeploymentStatus.DRAFT
    with pytest.raises(NotFound) as err:
        engine.start_instance(users["operator"].actor, "demo_approval")
    assert err.value.code == "definition_not_found"
    assert any(e.action == "setting.change_control" and e.after == {"mode": "required"}
               for e in engine.audit_events(limit=100))


def test_an_instance_starts_with_its_business_key_and_variables(engine, users):
    engine.deploy(ADMIN, [DEMO])
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "ORD-7",
                                     {"order": "ORD-7", "qty": 3})
    detail = engine.instance_detail(instance.id)
    assert detail["instance"].status == InstanceStatus.WAITING
    assert detail["instance"].business_key == "ORD-7"
    assert detail["variables"]["qty"] == 3


def test_lint_needs_no_initialised_database(tmp_path):
    fresh = Gmpflow(Database(f"sqlite:///{tmp_path / 'never-initialised.db'}"), change_control="off")
    assert fresh.lint([DEMO]) == []
    fresh.db.dispose()
