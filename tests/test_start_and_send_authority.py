"""Who may start a process and who may send it a message is read from the model (issue 14, point 1).

Start: the start event's ``start.roles``, else Camunda's ``candidateStarterGroups``, else the start
event's lane, else ``admin`` only. Send: the catching (or message start) event's ``message.senders``, else
its lane, else ``integration`` and ``admin``; ``engine`` lets no person in. A refusal is 403
``not_permitted``, changes no row, and is itself the one new event of the audit trail. The engine's own
starts and sends are recorded as the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.plugins import build_registry
from engine.audit import Actor
from engine.authority import NotPermitted
from engine.clock import FrozenClock
from engine.errors import DefinitionError
from engine.identity import Principal
from engine.services import Gmpflow
from tests.authority_support import (
    audit_tail,
    last_seq,
    message_start_model,
    properties,
    rows,
    waiting_model,
)
from tests.conftest import ADMIN, FIXTURES, ROOT, principal

ENGINE = Actor.system()
NOWHERE = "http://127.0.0.1:9"  # the shipped models' connectors are registered; none is called here


@pytest.fixture
def shipped(engine: Gmpflow, clock: FrozenClock) -> Callable[..., Gmpflow]:
    """An engine with the shipped models' connector operations, and the given shipped processes deployed."""
    def _deploy(*keys: str) -> Gmpflow:
        config = replace(engine.config, forms_path=(ROOT / "gmp" / "forms",))
        registry = build_registry({"GMPFLOW_ERP": "simulator", "GMPFLOW_ERP_URL": NOWHERE,
                                   "GMPFLOW_MES_URL": NOWHERE})
        with_connectors = Gmpflow(engine.db, clock, change_control="off", config=config, registry=registry)
        for key in keys:
            with_connectors.deploy(ADMIN, [ROOT / "gmp" / "processes" / key])
        return with_connectors

    return _deploy


def refused_and_recorded(engine: Gmpflow, action: str, call: Callable[[], object], who: Principal
                         ) -> NotPermitted:
    """Run ``call``, expect NotPermitted, and check that it changed no row and added exactly its own audit
    event."""
    before, seq = rows(engine.db), last_seq(engine.db)
    with pytest.raises(NotPermitted) as refused:
        call()
    assert refused.value.code == "not_permitted"
    assert rows(engine.db) == before
    [event] = audit_tail(engine.db, seq)
    assert (event.action, event.actor_id) == (action, who.username)
    assert event.after["roles"] == sorted(who.roles) and event.reason == refused.value.message
    return refused.value


# -- starting ------------------------------------------------------------------------------------------------
START_CASES = [
    # start.roles, lane, the user's role, allowed
    ("qa,supervisor", None, "qa", True),
    ("qa,supervisor", None, "supervisor", True),
    ("qa,supervisor", None, "operator", False),
    ("qa,supervisor", None, "admin", False),
    ("qa", "operator", "operator", False),        # the property wins over the lane
    ("qa", "operator", "qa", True),
    (None, "operator", "operator", True),          # no property: the start event's lane
    (None, "operator", "admin", False),
    (None, None, "admin", True),                   # neither: admin only
    (None, None, "operator", False),
    (None, None, "integration", False),
]


@pytest.mark.parametrize(("start_roles", "lane", "role", "allowed"), START_CASES)
def test_who_may_start_a_process_follows_start_roles_then_the_lane_then_admin_only(
        engine: Gmpflow, deploy, start_roles: str | None, lane: str | None, role: str, allowed: bool) -> None:
    deploy({"gate.bpmn": waiting_model(start_roles=start_roles, lane=lane)})
    who = principal("pat", role)
    if allowed:
        started = engine.start_instance(who, "gate", "G-1")
        assert started.initiator == "pat"
    else:
        refused = refused_and_recorded(engine, "instance.start_refused",
                                       lambda: engine.start_instance(who, "gate", "G-1"), who)
        assert refused.object_id == "gate"


def test_camunda_candidate_starter_groups_are_read_as_start_roles(engine: Gmpflow, deploy) -> None:
    deploy({"gate.bpmn": waiting_model(starter_groups="qa", lane="operator")})
    assert engine.start_instance(principal("quinn", "qa"), "gate").initiator == "quinn"
    olivia = principal("olivia", "operator")
    refused_and_recorded(engine, "instance.start_refused", lambda: engine.start_instance(olivia, "gate"),
                         olivia)


@pytest.mark.parametrize("key", ["sop_execution", "sop_step", "batch_release"])
def test_nobody_starts_by_hand_a_process_that_starts_on_a_message(shipped: Callable[..., Gmpflow],
                                                                 key: str) -> None:
    engine = shipped(key)
    ada = principal("ada", "admin")
    refused_and_recorded(engine, "instance.start_refused", lambda: engine.start_instance(ada, key, "B-1"),
                         ada)


def test_an_instance_the_engine_starts_is_recorded_as_the_engine(engine: Gmpflow, deploy) -> None:
    deploy({"gate.bpmn": waiting_model(start_roles="qa")})
    seq = last_seq(engine.db)
    started = engine.start_instance(ENGINE, "gate", "G-1")
    assert started.initiator == "system"
    assert [(e.action, e.actor_id, e.actor_name) for e in audit_tail(engine.db, seq)] == [
        ("instance.started", "system", "gmpflow engine")]


# -- sending -------------------------------------------------------------------------------------------------
SEND_CASES = [
    # message.senders, lane, the sender's role, allowed
    ("qa", None, "qa", True),
    ("qa", None, "integration", False),
    ("qa", "supervisor", "supervisor", False),     # the property wins over the lane
    (None, "supervisor", "supervisor", True),      # no property: the catching event's lane
    (None, "supervisor", "integration", False),
    (None, None, "integration", True),             # neither: integration and admin
    (None, None, "admin", True),
    (None, None, "operator", False),
    (None, None, "qa", False),
    ("engine", None, "admin", False),              # engine: no person at all
    ("engine", None, "integration", False),
]


@pytest.mark.parametrize(("senders", "lane", "role", "allowed"), SEND_CASES)
def test_who_may_send_to_a_waiting_instance_follows_message_senders_then_the_lane_then_integration(
        engine: Gmpflow, deploy, senders: str | None, lane: str | None, role: str, allowed: bool) -> None:
    deploy({"gate.bpmn": waiting_model(senders=senders, lane=lane)})
    instance = engine.start_instance(ENGINE, "gate", "G-1")
    who = principal("sid", role)
    if allowed:
        assert engine.correlate(who, "ping", {"business_key": "G-1"}) == {"status": "matched",
                                                                          "instance_id": instance.id}
    else:
        refused = refused_and_recorded(engine, "message.refused",
                                       lambda: engine.correlate(who, "ping", {"business_key": "G-1"}), who)
        assert refused.object_id == "ping"


@pytest.mark.parametrize(("senders", "lane", "role", "allowed"), [
    ("planner", None, "planner", True),
    ("planner", None, "integration", False),
    (None, "operator", "operator", True),
    (None, "operator", "integration", False),
    (None, None, "integration", True),
    (None, None, "operator", False),
    ("engine", None, "admin", False),
])
def test_who_may_start_a_process_by_message_follows_the_message_start_event(
        engine: Gmpflow, deploy, senders: str | None, lane: str | None, role: str, allowed: bool) -> None:
    deploy({"kicked.bpmn": message_start_model(senders=senders, lane=lane)})
    who = principal("sid", role)
    if allowed:
        assert engine.correlate(who, "kick", {"business_key": "K-1"})["status"] == "matched"
    else:
        refused_and_recorded(engine, "message.refused",
                             lambda: engine.correlate(who, "kick", {"business_key": "K-1"}), who)


@pytest.mark.parametrize(("name", "role", "allowed"), [
    ("ping", "qa", True),            # some active process catches it from qa: kept to wait
    ("ping", "integration", False),  # caught, but not from this sender
    ("ghost", "integration", False),  # nobody catches it: it cannot be planted to wait
    ("ghost", "admin", False),
])
def test_a_message_that_reaches_nothing_is_kept_only_from_a_sender_some_catching_event_allows(
        engine: Gmpflow, deploy, name: str, role: str, allowed: bool) -> None:
    deploy({"gate.bpmn": waiting_model(senders="qa")})
    who = principal("sid", role)
    if allowed:
        assert engine.correlate(who, name, {"business_key": "NOBODY"})["status"] == "pending"
    else:
        refused_and_recorded(engine, "message.refused",
                             lambda: engine.correlate(who, name, {"business_key": "NOBODY"}), who)


@pytest.mark.parametrize(("message", "role"), [
    ("batch_execution_requested", "operator"), ("batch_execution_requested", "admin"),
    ("sop_step_requested", "operator"), ("sop_step_requested", "integration"),
    ("batch_release_requested", "qa"),
])
def test_nobody_plants_a_batch_or_a_step_or_a_release_request_by_message(
        shipped: Callable[..., Gmpflow], message: str, role: str) -> None:
    engine = shipped("sop_execution", "sop_step", "batch_release")
    who = principal("mallory", role)
    refused_and_recorded(engine, "message.refused", lambda: engine.correlate(
        who, message, {"business_key": "B-1"}, {"batch": {"batch_id": "B-1"}}), who)


def test_the_erp_may_announce_an_order_and_an_operator_may_not(shipped: Callable[..., Gmpflow]) -> None:
    engine = shipped("order_release")
    olivia = principal("olivia", "operator")
    refused_and_recorded(engine, "message.refused", lambda: engine.correlate(
        olivia, "order_ready", {"business_key": "PO-1"}, {"order_id": "PO-1"}), olivia)
    started = engine.correlate(principal("erp", "integration"), "order_ready", {"business_key": "PO-1"},
                               {"order_id": "PO-1"})
    assert started["status"] == "matched"


# -- what lint and the API tell ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [
    waiting_model(start_roles="qa,nosuchrole"), waiting_model(senders="nosuchrole"),
    waiting_model(starter_groups="nosuchrole")])
def test_lint_refuses_a_start_or_send_role_that_does_not_exist(engine: Gmpflow, tmp_path: Path,
                                                               model: str) -> None:
    (tmp_path / "gate.bpmn").write_text(model)
    problems = engine.lint([tmp_path])
    assert [(p.code, "nosuchrole" in p.message) for p in problems] == [("unknown_role", True)]
    with pytest.raises(DefinitionError):
        engine.deploy(Actor("ada", "Ada"), [tmp_path])


def test_lint_and_deploy_tell_who_may_start(engine: Gmpflow, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from engine.cli import main

    monkeypatch.setattr("engine.cli._engine", lambda: engine)  # the test's database
    (tmp_path / "gate.bpmn").write_text(waiting_model(start_roles="qa,supervisor"))
    linted = CliRunner().invoke(main, ["lint", str(tmp_path)])
    assert linted.exit_code == 0 and "who may start gate: qa, supervisor" in linted.output, linted.output
    deployed = CliRunner().invoke(main, ["deploy", str(tmp_path)])
    assert "who may start: qa, supervisor" in deployed.output, deployed.output
    sop = CliRunner().invoke(main, ["lint", str(ROOT / "gmp" / "processes" / "sop_step")])
    assert "who may start sop_step: nobody" in sop.output, sop.output


def test_the_api_lists_who_may_start_and_refuses_others_with_403_not_permitted(api, deploy) -> None:
    deploy({"gate.bpmn": waiting_model(start_roles="qa")})
    [definition] = api.get("/api/v1/process-definitions", as_="quinn").json
    assert definition["start_roles"] == ["qa"]
    refused = api.post("/api/v1/process-definitions/gate/instances", as_="olivia", json={"variables": {}})
    assert (refused.status_code, refused.json["code"]) == (403, "not_permitted")
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert api.post("/api/v1/process-definitions/gate/instances", as_="quinn", json={}).status_code == 201
    sent = api.post("/api/v1/messages", as_="olivia", json={"name": "ping", "correlation_keys": {}})
    assert (sent.status_code, sent.json["code"]) == (403, "not_permitted")
    assert api.post("/api/v1/messages", as_="erin", json={"name": "ping", "correlation_keys": {}}
                    ).json["status"] == "matched"


@pytest.mark.parametrize(("role", "allowed"), [("qa", True), ("integration", False), ("operator", False)])
def test_an_event_after_an_event_based_gateway_keeps_its_own_senders_and_fields(
        engine: Gmpflow, deploy, role: str, allowed: bool) -> None:
    model = (FIXTURES / "gateway_event_based.bpmn").read_text().replace(
        '<bpmn:intermediateCatchEvent id="result_received">',
        '<bpmn:intermediateCatchEvent id="result_received">'
        + properties(message_senders="qa", message_fields="value"))
    deploy({"gateway_event_based.bpmn": model})
    instance = engine.start_instance(ENGINE, "gateway_event_based", "SAMPLE-7")
    who = principal("lab", role)
    if allowed:
        assert engine.correlate(who, "lab_result", {"business_key": "SAMPLE-7"}, {"value": "pass"}) == {
            "status": "matched", "instance_id": instance.id}
    else:
        refused_and_recorded(engine, "message.refused", lambda: engine.correlate(
            who, "lab_result", {"business_key": "SAMPLE-7"}, {"value": "pass"}), who)
