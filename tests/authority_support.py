"""Models and helpers for the start/send authority and declared-data tests (holds no tests)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from engine.packs import schema
from engine.store import Database
from engine.store.models import AuditEvent

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="{key}_defs" targetNamespace="http://gmpflow.example/bpmn">
  <bpmn:message id="msg_{message}" name="{message}"/>
"""


def properties(**props: str | None) -> str:
    """``spiffworkflow:properties`` with the given ones (``start_roles`` → ``start.roles``...); "" if none."""
    given = {k.replace("_", ".", 1) if k.startswith(("start_", "message_")) else k: v
             for k, v in props.items() if v is not None}
    if not given:
        return ""
    inner = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in given.items())
    return f"<bpmn:extensionElements><spiffworkflow:properties>{inner}</spiffworkflow:properties>" \
           "</bpmn:extensionElements>"


def _lanes(lane: str | None, nodes: list[str]) -> str:
    if lane is None:
        return ""
    refs = "".join(f"<bpmn:flowNodeRef>{n}</bpmn:flowNodeRef>" for n in nodes)
    return f'<bpmn:laneSet id="lanes"><bpmn:lane id="lane_1" name="{lane}">{refs}</bpmn:lane></bpmn:laneSet>'


def waiting_model(key: str = "gate", *, lane: str | None = None, start_roles: str | None = None,
                  start_form: str | None = None, message: str = "ping", senders: str | None = None,
                  fields: str | None = None, catch_form: str | None = None, starter_groups: str | None = None,
                  task_form: str | None = None, result_variable: str | None = None) -> str:
    """start → catch message ``message`` (payload in ``ping``) → user task ``work`` → echo service task
    ``call`` (its result in ``result_variable``, default ``echoed``) → end."""
    camunda = f' camunda:candidateStarterGroups="{starter_groups}"' if starter_groups else ""
    return HEAD.format(key=key, message=message) + f"""
  <bpmn:process id="{key}" name="{key}" isExecutable="true"{camunda}>
    {_lanes(lane, ["start", "wait", "work", "call", "end"])}
    <bpmn:startEvent id="start">{properties(start_roles=start_roles, formId=start_form)}
      <bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait" name="Wait">
      {properties(message_senders=senders, message_fields=fields, formId=catch_form)}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:messageEventDefinition id="med" messageRef="msg_{message}">
        <bpmn:extensionElements><spiffworkflow:messageVariable>ping</spiffworkflow:messageVariable>
        </bpmn:extensionElements></bpmn:messageEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="work" name="Work">{properties(formId=task_form)}
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:serviceTask id="call"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="echo" resultVariable="{result_variable or 'echoed'}">
        <spiffworkflow:parameters><spiffworkflow:parameter id="x" type="int" value="1"/>
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="work"/>
    <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="call"/>
    <bpmn:sequenceFlow id="f4" sourceRef="call" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def message_start_model(key: str = "kicked", *, message: str = "kick", lane: str | None = None,
                        senders: str | None = None, fields: str | None = None) -> str:
    """A process that starts on message ``message`` (payload in ``kick``) and waits in task ``work``."""
    return HEAD.format(key=key, message=message) + f"""
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    {_lanes(lane, ["start", "work", "end"])}
    <bpmn:startEvent id="start">{properties(message_senders=senders, message_fields=fields)}
      <bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:messageEventDefinition id="med" messageRef="msg_{message}">
        <bpmn:extensionElements><spiffworkflow:messageVariable>kick</spiffworkflow:messageVariable>
        </bpmn:extensionElements></bpmn:messageEventDefinition>
    </bpmn:startEvent>
    <bpmn:userTask id="work" name="Work"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def form(form_id: str, *components: dict[str, Any]) -> str:
    return json.dumps({"id": form_id, "type": "default", "schemaVersion": 16, "components": list(components)})


def rows(db: Database) -> dict[str, Any]:
    """Every row of every table but the audit trail and its head (what a refused request must leave as it
    was)."""
    with db.read() as session:
        return {t.name: sorted(map(repr, session.execute(select(t)).all()))
                for t in schema().sorted_tables if not t.name.startswith("audit_")}


def audit_tail(db: Database, after_seq: int) -> list[AuditEvent]:
    with db.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.seq > after_seq)
                                    .order_by(AuditEvent.seq)))


def last_seq(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0
