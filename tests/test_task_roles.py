"""Who may work on a user task is read from the model: its ``candidateRoles`` expression, else its lane.

A task routed by ``candidateRoles`` to a role that is not its lane's (the owner role of the master-data type a
change is about) shows in that role's inbox, and only there: the lane's holders neither see nor claim it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.errors import PermissionDenied
from engine.services import Gmpflow
from tests.conftest import ADMIN

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


def props(**values: str) -> str:
    inner = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in values.items())
    return f"<bpmn:extensionElements><spiffworkflow:properties>{inner}</spiffworkflow:properties>" \
           "</bpmn:extensionElements>"


def one_task(key: str, *, lane: str | None = None, candidate_roles: str | None = None) -> str:
    """start → user task ``work`` → end; the task in ``lane`` (None: none), routed by ``candidate_roles``."""
    refs = "".join(f"<bpmn:flowNodeRef>{n}</bpmn:flowNodeRef>" for n in ("start", "work", "end"))
    lanes = f'<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="{lane}">{refs}</bpmn:lane></bpmn:laneSet>' \
        if lane else ""
    routed = props(candidateRoles=candidate_roles) if candidate_roles else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="d_{key}" targetNamespace="http://gmpflow.example/bpmn">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">{lanes}
    <bpmn:startEvent id="start">{props(**{"start.roles": "admin"})}<bpmn:outgoing>f1</bpmn:outgoing>
    </bpmn:startEvent>
    <bpmn:userTask id="work" name="Work">{routed}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def open_task(engine: Gmpflow, deploy: Callable[..., Any], key: str, **where: str) -> int:
    deploy({f"{key}.bpmn": one_task(key, **where)})
    instance = engine.start_instance(ADMIN, key, f"{key}-1")
    [task] = [t for t in engine.list_tasks(engine.principal("admin")) if t.instance_id == instance.id]
    return int(task.id)


@pytest.fixture
def people(engine: Gmpflow) -> Gmpflow:
    engine.add_user(ADMIN, "admin", "Ada Admin", "correct horse battery", ["admin"])
    engine.add_user(ADMIN, "olga", "Olga Operator", "correct horse battery", ["operator"])
    engine.add_role(ADMIN, "tablet_owner", "Owns the tablet press master data", "stewardship")
    engine.add_user(ADMIN, "tom", "Tom Owner", "correct horse battery", ["tablet_owner"])
    return engine


def test_a_task_routed_by_candidate_roles_shows_in_that_roles_inbox_not_its_lanes(
        people: Gmpflow, deploy: Callable[..., Any]) -> None:
    task_id = open_task(people, deploy, "routed", lane="operator", candidate_roles="'tablet_owner'")
    tom, olga = people.principal("tom"), people.principal("olga")

    assert [t.id for t in people.list_tasks(tom, role="tablet_owner")] == [task_id]
    assert task_id in [t.id for t in people.list_tasks(tom)]
    assert task_id not in [t.id for t in people.list_tasks(olga)]
    with pytest.raises(PermissionDenied):
        people.claim_task(olga, task_id)
    people.complete_task(tom, task_id, {})


def test_a_role_name_with_an_underscore_matches_only_itself(
        people: Gmpflow, deploy: Callable[..., Any]) -> None:
    people.add_role(ADMIN, "tablet0owner", "Look-alike", "a role whose name the other's pattern would match")
    people.add_user(ADMIN, "xena", "Xena Lookalike", "correct horse battery", ["tablet0owner"])
    task_id = open_task(people, deploy, "exact", candidate_roles="'tablet_owner'")

    assert task_id not in [t.id for t in people.list_tasks(people.principal("xena"))]
