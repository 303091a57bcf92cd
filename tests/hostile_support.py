"""Models and helpers for the hostile-input table (holds no tests)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import func, select

from engine.packs import schema
from engine.store import Database
from engine.store.models import AuditEvent

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="hostile_defs" targetNamespace="http://gmpflow.example/bpmn">
  <bpmn:process id="hostile" name="Hostile" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="script"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="which" default="f_no">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:businessRuleTask id="rule">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>hostile_rule</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>f_yes</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_no"><bpmn:incoming>f_no</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="script"/>
    <bpmn:sequenceFlow id="f2" sourceRef="script" targetRef="which"/>
    <bpmn:sequenceFlow id="f_yes" sourceRef="which" targetRef="rule">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="which" targetRef="end_no"/>
    <bpmn:sequenceFlow id="f3" sourceRef="rule" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="hostile_rule_defs" name="Rule"
             namespace="http://gmpflow.example/dmn">
  <decision id="hostile_rule" name="Rule">
    <decisionTable id="hostile_rule_table" hitPolicy="UNIQUE">
      <input id="in_x" label="x">
        <inputExpression id="in_x_expr" typeRef="number"><text>x</text></inputExpression>
      </input>
      <output id="out_grade" label="Grade" name="grade" typeRef="string"/>
      <rule id="r_a">
        <inputEntry id="r_a_in"><text>{input_cell}</text></inputEntry>
        <outputEntry id="r_a_out"><text>{output_cell}</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def bundle(script: str = "x = 1", condition: str = "x &gt; 0", input_cell: str = "&gt;= 1",
           output_cell: str = '"A"', *, escape_code: bool = True) -> dict[str, str]:
    """A valid two-file bundle (BPMN + DMN) with one piece of code replaced; code is XML-escaped."""
    esc = escape if escape_code else (lambda s: s)
    return {"hostile.bpmn": BPMN.format(script=esc(script),
                                        condition=esc(condition) if condition != "x &gt; 0" else condition),
            "hostile_rule.dmn": DMN.format(input_cell=esc(input_cell) if input_cell != "&gt;= 1"
                                           else input_cell,
                                           output_cell=esc(output_cell))}


def snapshot(db: Database) -> dict[str, Any]:
    """Row counts of every table and the audit trail's last sequence number and hash."""
    with db.read() as session:
        counts = {t.name: session.scalar(select(func.count()).select_from(t))
                  for t in schema().sorted_tables}
        last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc())
                               .limit(1)).first()
    return {"rows": counts, "last_audit": tuple(last) if last else None}
