"""Four eyes, complete (issue 14, point 4).

``signature.distinctFrom`` says who may not sign a task: ``initiator``, ``all`` (the initiator and every
earlier signer of the instance), ``performer:<task>``, ``signers:<task>``, ``variable:<name>`` and
``related`` (everyone who completed or signed a task in an instance of another process with the same
business key, or in any instance of a key below it). A conflict is told before any password is checked
(403 ``signature_four_eyes`` whatever password was sent), never counts toward lockout, and the task page
says it before the signing dialog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask

from engine import identity
from engine.definitions.bundle import Bundle
from engine.services import Gmpflow
from tests.api_support import PASSWORD, Api
from tests.conftest import ADMIN
from tests.hostile_support import snapshot
from webapp import create_app

# everyone holds both roles: only the four-eyes rule decides
WHO = ("ini", "per", "wit", "var", "rel", "rew", "free")
MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="{key}" name="Four eyes" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="lane_operator" name="operator">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>record_values</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>witness</bpmn:flowNodeRef><bpmn:flowNodeRef>team</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="lane_qa" name="qa">
        <bpmn:flowNodeRef>approve</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="record_values" name="Record"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="witness" name="Witness">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="signature.meaning" value="Verified"/>
        <spiffworkflow:property name="signature.distinctFrom" value="performer:record_values"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="team" name="Who worked on it"><bpmn:incoming>f3</bpmn:incoming>
      <bpmn:outgoing>f4</bpmn:outgoing><bpmn:script>team = {{'members': ['var']}}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="approve" name="Approve">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="signature.meaning" value="Approved"/>
        <spiffworkflow:property name="signature.distinctFrom" value="{rule}"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="record_values"/>
    <bpmn:sequenceFlow id="f2" sourceRef="record_values" targetRef="witness"/>
    <bpmn:sequenceFlow id="f3" sourceRef="witness" targetRef="team"/>
    <bpmn:sequenceFlow id="f4" sourceRef="team" targetRef="approve"/>
    <bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
RULES = {  # rule -> who it excludes (nobody else is)
    "initiator": {"ini"},
    "all": {"ini", "wit"},
    "performer:record_values": {"per"},
    "signers:witness": {"wit"},
    "variable:team.members": {"var"},
    "related": {"rel", "rew"},
    "initiator,related,performer:record_values": {"ini", "rel", "rew", "per"},
}


class World:
    def __init__(self, engine: Gmpflow, api: Api) -> None:
        self.engine, self.api = engine, api

    def task(self, instance_id: int, element_id: str) -> int:
        found = [t["id"] for t in self.api.get(f"/api/v1/tasks?instance_id={instance_id}", as_="free").json
                 or [] if t["element_id"] == element_id]
        assert len(found) == 1
        return int(found[0])

    def complete(self, who: str, instance_id: int, element_id: str, data: dict[str, Any] | None = None,
                 meaning: str | None = None, password: str = PASSWORD) -> Any:
        body: dict[str, Any] = {"data": data or {}}
        if meaning:
            body["signature"] = {"username": who, "password": password, "meaning": meaning}
        return self.api.post(f"/api/v1/tasks/{self.task(instance_id, element_id)}/complete", as_=who,
                             json=body)

    def to_approval(self, key: str, business_key: str = "B-1") -> int:
        """``ini`` starts, ``per`` records, ``wit`` witnesses; in a step instance of the same batch
        (business key below this one's) ``rel`` records and ``rew`` witnesses. The approval is open."""
        step = self.api.post(f"/api/v1/process-definitions/{key}/instances", as_="ini",
                             json={"business_key": f"{business_key}/00001"}).json["id"]
        self.complete("rel", step, "record_values")
        self.complete("rew", step, "witness", meaning="Verified")
        started = self.api.post(f"/api/v1/process-definitions/{key}/instances", as_="ini",
                                json={"business_key": business_key})
        assert started.status_code == 201, started.json
        instance = int(started.json["id"])
        self.complete("per", instance, "record_values")
        assert self.complete("wit", instance, "witness", meaning="Verified").status_code == 200
        return instance

    def failed_attempts(self, username: str) -> int:
        return next(u.failed_attempts for u in self.engine.list_users() if u.username == username)


@pytest.fixture
def world(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    for username in WHO:
        engine.add_user(ADMIN, username, username.title(), PASSWORD, ["operator", "qa"])
    app: Flask = create_app({"TESTING": True, "SECRET_KEY": "test-secret"}, engine=engine)
    api = Api(app, app.test_client())
    api._created = set(WHO)
    for username in WHO:  # signed in up front: a token is a stored session row of its own
        api.token(username)
    return World(engine, api)


def deploy_rule(engine: Gmpflow, rule: str, key: str = "four_eyes") -> str:
    engine.deploy(ADMIN, bundle=Bundle({f"{key}.bpmn": MODEL.format(key=key, rule=rule)}))
    return key


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("rule", sorted(RULES))
def test_who_may_sign_under_each_distinct_from_rule(world: World, rule: str, who: str) -> None:
    instance = world.to_approval(deploy_rule(world.engine, rule))
    before = snapshot(world.engine.db)
    response = world.complete(who, instance, "approve", meaning="Approved")
    if who in RULES[rule]:
        assert (response.status_code, response.json["code"]) == (403, "signature_four_eyes")
        assert snapshot(world.engine.db) == before
    else:
        assert response.status_code == 200, response.json


@pytest.mark.parametrize("password", [PASSWORD, "wrong password", ""])
def test_a_four_eyes_conflict_is_told_whatever_password_and_never_counts_toward_lockout(
        world: World, password: str) -> None:
    instance = world.to_approval(deploy_rule(world.engine, "initiator"))
    before = snapshot(world.engine.db)
    for _ in range(6):  # more than the lockout threshold
        response = world.complete("ini", instance, "approve", meaning="Approved", password=password)
        assert (response.status_code, response.json["code"]) == (403, "signature_four_eyes")
    assert world.failed_attempts("ini") == 0
    assert snapshot(world.engine.db) == before
    assert world.complete("free", instance, "approve", meaning="Approved").status_code == 200


def test_a_wrong_password_without_a_conflict_still_counts(world: World) -> None:
    instance = world.to_approval(deploy_rule(world.engine, "initiator"))
    response = world.complete("free", instance, "approve", meaning="Approved", password="wrong password")
    assert response.json["code"] == "signature_password_invalid"
    assert world.failed_attempts("free") == 1


def test_the_variable_a_four_eyes_rule_reads_cannot_be_set_by_a_client(world: World) -> None:
    key = deploy_rule(world.engine, "variable:team.members")
    started = world.api.post(f"/api/v1/process-definitions/{key}/instances", as_="ini",
                             json={"business_key": "B-2", "variables": {"team": {"members": []}}})
    assert (started.status_code, started.json["code"]) == (422, "undeclared_field")
    step = world.api.post(f"/api/v1/process-definitions/{key}/instances", as_="ini",
                          json={"business_key": "B-4"}).json["id"]
    before = snapshot(world.engine.db)
    refused = world.complete("per", step, "record_values", {"team": {"members": []}})
    assert (refused.status_code, refused.json["code"]) == (422, "undeclared_field")
    assert snapshot(world.engine.db) == before


def test_the_task_page_tells_the_conflict_before_the_signing_dialog(world: World) -> None:
    instance = world.to_approval(deploy_rule(world.engine, "initiator,related"))
    task_id = world.task(instance, "approve")
    for who, conflict in (("ini", "they started the process"),
                          ("rel", "they completed 'Record' in four_eyes #1"),
                          ("rew", "they completed 'Witness' in four_eyes #1"), ("free", None)):
        view = world.engine.task_view(world.engine.principal(who), task_id)
        assert (view["four_eyes_conflict"] is None) is (conflict is None)
        if conflict:
            assert conflict in view["four_eyes_conflict"]
        client = world.api.app.test_client()
        login(client, who)
        page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
        assert ('id="four-eyes-conflict"' in page) is (conflict is not None)
        assert ('id="sign-dialog"' in page) is (conflict is None)
        button = page.split('id="complete-button"', 1)[1].split(">", 1)[0]
        assert ("disabled" in button) is (conflict is not None)
        assert "<script>" not in page  # the page's CSP: no inline scripts


def login(client: Any, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]


def test_lint_names_the_new_rules_and_refuses_unknown_ones(engine: Gmpflow, tmp_path: Path) -> None:
    for rule in ("all", "related", "variable:team.members"):
        assert engine.lint_bundle(Bundle({"x.bpmn": MODEL.format(key="x", rule=rule)})) == []
    problems = engine.lint_bundle(Bundle({"x.bpmn": MODEL.format(key="x", rule="everyone")}))
    assert [p.code for p in problems] == ["bad_distinct_from"]
    assert "'all', 'related'" in problems[0].message
