"""Data enters only where the model declared it (issue 14, point 2).

Start variables are the fields of the start event's form, a message payload those of the catching event's
form or its ``message.fields``, task data those of the task's form. Any other key — and a field that is
read-only, disabled or computed in its form, or a variable the engine or a connector writes — is refused
with 422 ``undeclared_field`` naming the keys, and nothing is stored: no row and no audit event changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.audit import Actor
from engine.errors import UndeclaredField, ValidationFailed
from engine.services import Gmpflow
from tests.authority_support import form, last_seq, message_start_model, rows, waiting_model
from tests.conftest import principal

ENGINE = Actor.system()
QUINN = principal("quinn", "qa")
ERIN = principal("erin", "integration")
FIELDS = (
    {"key": "lot", "label": "Lot", "type": "textfield", "validate": {"required": True, "maxLength": 20}},
    {"key": "count", "label": "Count", "type": "number", "validate": {"min": 0, "max": 10}},
    {"key": "checked_by", "label": "Checked by", "type": "textfield", "readonly": True},
    {"key": "locked", "label": "Locked", "type": "textfield", "disabled": True},
    {"key": "total", "label": "Total", "type": "expression", "expression": "=count * 2"},
)


def unchanged(engine: Gmpflow, call: Callable[[], Any]) -> UndeclaredField:
    """Run ``call``, expect UndeclaredField, and check that no row and no audit event changed."""
    before, seq = rows(engine.db), last_seq(engine.db)
    with pytest.raises(UndeclaredField) as refused:
        call()
    assert refused.value.code == "undeclared_field"
    assert (rows(engine.db), last_seq(engine.db)) == (before, seq)
    return refused.value


# -- start variables -----------------------------------------------------------------------------------------
@pytest.fixture
def with_start_form(engine: Gmpflow, deploy) -> Gmpflow:  # type: ignore[no-untyped-def]
    deploy({"gate.bpmn": waiting_model(start_roles="qa", start_form="gate_start"),
            "gate_start.form": form("gate_start", *FIELDS)})
    return engine


@pytest.mark.parametrize(("variables", "refused"), [
    ({"lot": "L-1", "price": 3}, ["price"]),                        # unknown
    ({"lot": "L-1", "ping": {"result": "pass"}}, ["ping"]),        # the message variable: the engine's
    ({"lot": "L-1", "echoed": 1}, ["echoed"]),                     # a connector's result variable
    ({"lot": "L-1", "checked_by": "quinn"}, ["checked_by"]),       # read-only in the form
    ({"lot": "L-1", "locked": "x"}, ["locked"]),                   # disabled in the form
    ({"lot": "L-1", "total": 99}, ["total"]),                      # computed in the form
    ({"b": 1, "a": 2, "lot": "L-1"}, ["a", "b"]),                  # every one is named
])
def test_start_variables_outside_the_start_form_are_refused_and_nothing_is_stored(
        with_start_form: Gmpflow, variables: dict[str, Any], refused: list[str]) -> None:
    flow = with_start_form
    error = unchanged(flow, lambda: flow.start_instance(QUINN, "gate", "G-1", variables))
    assert error.fields == refused and all(key in error.message for key in refused)


def test_start_variables_of_the_start_form_are_checked_like_task_data(with_start_form: Gmpflow) -> None:
    started = with_start_form.start_instance(QUINN, "gate", "G-1", {"lot": "L-1", "count": "4"})
    assert with_start_form.instance_detail(started.id)["variables"]["count"] == 4
    for wrong in ({"count": 4}, {"lot": "L-1", "count": 11}):  # required, limits: as today
        with pytest.raises(ValidationFailed) as invalid:
            with_start_form.start_instance(QUINN, "gate", "G-2", wrong)
        assert invalid.value.code == "validation_failed"


def test_a_start_event_without_a_form_takes_no_variables_but_a_business_key(engine: Gmpflow, deploy) -> None:
    deploy({"gate.bpmn": waiting_model(start_roles="qa")})
    error = unchanged(engine, lambda: engine.start_instance(QUINN, "gate", "G-1", {"approved": True}))
    assert error.fields == ["approved"]
    assert engine.start_instance(QUINN, "gate", "G-1", {}).business_key == "G-1"


def test_the_engine_starts_with_the_variables_it_computed(engine: Gmpflow, deploy) -> None:
    deploy({"gate.bpmn": waiting_model(start_roles="qa")})
    started = engine.start_instance(ENGINE, "gate", "G-1", {"batch": {"batch_id": "B-1"}})
    assert engine.instance_detail(started.id)["variables"]["batch"] == {"batch_id": "B-1"}


# -- message payloads ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("declared", "payload", "refused"), [
    ({"fields": "result,lot"}, {"result": "pass", "price": 1}, ["price"]),
    ({"fields": "result,lot"}, {"released_by": "quinn"}, ["released_by"]),
    ({"catch_form": "gate_msg"}, {"lot": "L-1", "total": 3}, ["total"]),    # computed in the form
    ({"catch_form": "gate_msg"}, {"checked_by": "x"}, ["checked_by"]),     # read-only in the form
    ({}, {"result": "pass"}, ["result"]),                                  # nothing declared
])
def test_a_payload_outside_the_catching_events_declaration_is_refused_and_the_instance_keeps_waiting(
        engine: Gmpflow, deploy, declared: dict[str, str], payload: dict[str, Any], refused: list[str]
) -> None:
    deploy({"gate.bpmn": waiting_model(senders="integration", **declared),
            "gate_msg.form": form("gate_msg", *FIELDS)})
    instance = engine.start_instance(ENGINE, "gate", "G-1")
    error = unchanged(engine, lambda: engine.correlate(ERIN, "ping", {"business_key": "G-1"}, payload))
    assert error.fields == refused
    assert engine.instance_detail(instance.id)["instance"].status == "waiting"


@pytest.mark.parametrize(("declared", "payload"), [
    ({"fields": "result,lot"}, {"result": "pass", "lot": "L-1"}),
    ({"catch_form": "gate_msg"}, {"lot": "L-1", "count": 3}),
])
def test_a_declared_payload_reaches_the_instance(engine: Gmpflow, deploy, declared: dict[str, str],
                                                 payload: dict[str, Any]) -> None:
    deploy({"gate.bpmn": waiting_model(senders="integration", **declared),
            "gate_msg.form": form("gate_msg", *FIELDS)})
    instance = engine.start_instance(ENGINE, "gate", "G-1")
    assert engine.correlate(ERIN, "ping", {"business_key": "G-1"}, payload)["status"] == "matched"
    assert engine.instance_detail(instance.id)["variables"]["ping"] == payload


def test_a_message_start_takes_only_its_declared_fields(engine: Gmpflow, deploy) -> None:
    deploy({"kicked.bpmn": message_start_model(fields="order_id")})
    error = unchanged(engine, lambda: engine.correlate(ERIN, "kick", {"business_key": "K-1"},
                                                       {"order_id": "K-1", "limits": [-1e9, 1e9]}))
    assert error.fields == ["limits"]
    assert engine.correlate(ERIN, "kick", {"business_key": "K-1"}, {"order_id": "K-1"})["status"] == "matched"


def test_a_kept_message_carries_only_what_some_catching_event_declares(engine: Gmpflow, deploy) -> None:
    deploy({"gate.bpmn": waiting_model(senders="integration", fields="result")})
    error = unchanged(engine, lambda: engine.correlate(ERIN, "ping", {"business_key": "LATER"},
                                                       {"result": "pass", "planted": 1}))
    assert error.fields == ["planted"]
    kept = engine.correlate(ERIN, "ping", {"business_key": "LATER"}, {"result": "pass"})
    assert kept["status"] == "pending"


# -- task data -----------------------------------------------------------------------------------------------
@pytest.fixture
def at_task(engine: Gmpflow, deploy) -> tuple[Gmpflow, int]:  # type: ignore[no-untyped-def]
    """An instance whose task ``work`` (form ``gate_task``: the FIELDS plus ``echoed``, which the service
    task after it writes) is open."""
    deploy({"gate.bpmn": waiting_model(task_form="gate_task"),
            "gate_task.form": form("gate_task", *FIELDS,
                                   {"key": "echoed", "label": "Echo", "type": "textfield"})})
    instance = engine.start_instance(ENGINE, "gate", "G-1")
    engine.correlate(ENGINE, "ping", {"business_key": "G-1"}, {})
    [task] = engine.list_tasks(QUINN, instance_id=instance.id)
    return engine, task.id


@pytest.mark.parametrize(("data", "refused"), [
    ({"lot": "L-1", "approved": True}, ["approved"]),
    ({"lot": "L-1", "checked_by": "quinn"}, ["checked_by"]),
    ({"lot": "L-1", "locked": "x"}, ["locked"]),
    ({"lot": "L-1", "total": 1}, ["total"]),
    ({"lot": "L-1", "echoed": "forged"}, ["echoed"]),     # the connector writes it, even if the form shows it
    ({"lot": "L-1", "ping": {}}, ["ping"]),                # the message variable
])
def test_task_data_outside_the_tasks_form_is_refused_and_the_task_stays_open(
        at_task: tuple[Gmpflow, int], data: dict[str, Any], refused: list[str]) -> None:
    engine, task_id = at_task
    error = unchanged(engine, lambda: engine.complete_task(QUINN, task_id, data))
    assert error.fields == refused
    assert engine.get_task(QUINN, task_id).state == "open"
    assert engine.complete_task(QUINN, task_id, {"lot": "L-1", "count": 2}).state == "completed"


def test_the_api_answers_422_undeclared_field_naming_the_keys(api, deploy) -> None:  # type: ignore[no-untyped-def]
    deploy({"gate.bpmn": waiting_model(start_roles="qa", start_form="gate_start", senders="integration",
                                       fields="result"),
            "gate_start.form": form("gate_start", *FIELDS)})
    started = api.post("/api/v1/process-definitions/gate/instances", as_="quinn",
                       json={"business_key": "G-1", "variables": {"lot": "L-1", "zeta": 1, "alpha": 2}})
    assert (started.status_code, started.json["code"]) == (422, "undeclared_field")
    assert started.json["fields"] == ["alpha", "zeta"] and "alpha, zeta" in started.json["detail"]
    assert api.post("/api/v1/process-definitions/gate/instances", as_="quinn",
                    json={"business_key": "G-1", "variables": {"lot": "L-1"}}).status_code == 201
    sent = api.post("/api/v1/messages", as_="erin", json={"name": "ping", "correlation_keys": {},
                                                          "payload": {"result": "pass", "extra": 1}})
    assert (sent.status_code, sent.json["code"], sent.json["fields"]) == (422, "undeclared_field", ["extra"])
