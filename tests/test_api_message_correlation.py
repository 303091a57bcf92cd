"""POST /api/v1/messages with correlation keys of every shape (issue 18: "a message with correlation keys
answers 500"), against a model whose message has a BPMN correlation property (``sample_id``, read from the
payload). Every test runs twice: on one engine, and with save-and-reload between steps (each request goes to
an app on a freshly built engine: the instance is restored from the database). A refusal has a stable
status and problem code, delivers nothing, stores nothing and leaves the audit trail as it was."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import TestResponse

from engine.errors import ValidationFailed
from tests.api_support import Api
from tests.hostile_support import snapshot
from webapp import create_app

SENDER = "erin"  # integration: the catching event's default senders


class ReloadingApi(Api):
    """An API client whose every request, with ``reload``, reaches an app on a new engine (a restart)."""

    def __init__(self, flow: Any) -> None:
        self.flow = flow
        super().__init__(*self._fresh())

    def _fresh(self) -> tuple[Any, Any]:
        engine = self.flow.restart() if self.flow.reload else self.flow.current
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret"}, engine=engine)
        return app, app.test_client()

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        self.app, self.client = self._fresh()
        return super().call(method, path, **kwargs)


@pytest.fixture
def rest(flow, deploy) -> ReloadingApi:  # type: ignore[no-untyped-def]
    deploy("message_correlation_key.bpmn")
    client = ReloadingApi(flow)
    client.token(SENDER)
    return client


def start(rest: ReloadingApi, business_key: str) -> int:
    response = rest.post("/api/v1/process-definitions/message_correlation_key/instances", as_="ada",
                         json={"business_key": business_key, "variables": {}})
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def status(rest: ReloadingApi, instance_id: int) -> str:
    return str(rest.get(f"/api/v1/instances/{instance_id}", as_="ada").json["status"])


def send(rest: ReloadingApi, keys: Any, payload: dict[str, Any]) -> TestResponse:
    return rest.post("/api/v1/messages", as_=SENDER,
                     json={"name": "lab_result", "correlation_keys": keys, "payload": payload})


def test_a_message_reaches_the_instance_its_business_key_names_and_carries_its_correlation_property(rest):
    first, second = start(rest, "S-7"), start(rest, "S-8")
    answered = send(rest, {"business_key": "S-8"}, {"sample_id": "S-7"})
    assert (answered.status_code, answered.json) == (200, {"status": "matched", "instance_id": second})
    assert (status(rest, first), status(rest, second)) == ("waiting", "completed")
    result = rest.get(f"/api/v1/instances/{second}", as_="ada").json["variables"]["result"]
    assert result == {"sample_id": "S-7"}


@pytest.mark.parametrize("keys", [{}, {"sample_id": "S-7"}], ids=["no keys", "a key both hold"])
def test_a_message_two_waiting_instances_match_is_refused_and_reaches_neither(flow, rest, keys):
    first, second = start(rest, "S-7"), start(rest, "S-8")
    before = snapshot(flow.database)
    answered = send(rest, keys, {"sample_id": "S-7"})
    assert (answered.status_code, answered.json["code"]) == (409, "message_ambiguous")
    assert snapshot(flow.database) == before
    assert (status(rest, first), status(rest, second)) == ("waiting", "waiting")
    assert send(rest, {"business_key": "S-7", "sample_id": "S-7"}, {"sample_id": "S-7"}).json == {
        "status": "matched", "instance_id": first}


@pytest.mark.parametrize("keys", [{"business_key": None}, {"business_key": ["S-7"]},
                                  {"business_key": {"id": "S-7"}}, {"": "S-7"}],
                         ids=["null", "a list", "an object", "an empty name"])
def test_correlation_keys_that_could_never_match_are_refused_and_nothing_is_kept(flow, rest, keys):
    """The request schema says what a key is (the engine refuses the same for its other callers)."""
    instance = start(rest, "S-7")
    before = snapshot(flow.database)
    answered = send(rest, keys, {"sample_id": "S-7"})
    assert (answered.status_code, answered.json["code"]) == (400, "validation_failed")
    assert all(field.startswith("correlation_keys") for field in answered.json["errors"])
    assert snapshot(flow.database) == before
    assert status(rest, instance) == "waiting"


@pytest.mark.parametrize("keys", ["S-7", ["S-7"], 7], ids=["a text", "a list", "a number"])
def test_correlation_keys_that_are_no_object_are_refused_by_the_request_schema(flow, rest, keys):
    start(rest, "S-7")
    before = snapshot(flow.database)
    answered = send(rest, keys, {"sample_id": "S-7"})
    assert (answered.status_code, answered.json["code"]) == (400, "validation_failed")
    assert snapshot(flow.database) == before


def test_a_message_without_the_field_its_correlation_property_reads_is_refused_by_name(flow, rest):
    instance = start(rest, "S-7")
    before = snapshot(flow.database)
    answered = send(rest, {"business_key": "S-7"}, {})
    assert (answered.status_code, answered.json["code"]) == (400, "message_invalid")
    assert list(answered.json["errors"]) == ["sample_id"]
    assert snapshot(flow.database) == before
    assert status(rest, instance) == "waiting"
    assert send(rest, {"business_key": "S-7"}, {"sample_id": "S-7"}).status_code == 200
    assert status(rest, instance) == "completed"


def test_a_message_whose_correlation_property_disagrees_with_the_instance_is_kept_not_delivered(rest):
    instance = start(rest, "S-7")  # its sample_id is S-7
    answered = send(rest, {"business_key": "S-7"}, {"sample_id": "S-9"})
    assert (answered.status_code, answered.json["status"]) == (200, "pending")
    assert status(rest, instance) == "waiting"


def test_a_message_with_keys_no_waiting_instance_holds_is_kept_for_its_time_to_live(rest):
    instance = start(rest, "S-7")
    answered = send(rest, {"lot": "L-1"}, {"sample_id": "S-7"})
    assert (answered.status_code, answered.json["status"]) == (200, "pending")
    assert status(rest, instance) == "waiting"


@pytest.mark.parametrize("keys", [{"business_key": None}, {"business_key": ["S-7"]}, {" ": "S-7"}],
                         ids=["null", "a list", "a blank name"])
def test_the_engine_refuses_unmatchable_keys_from_its_other_callers_too(flow, rest, users, keys):
    start(rest, "S-7")
    before = snapshot(flow.database)
    with pytest.raises(ValidationFailed) as refused:
        flow.correlate(users["admin"].actor, "lab_result", keys, {"sample_id": "S-7"})
    assert (refused.value.code, list(refused.value.context["errors"])) == ("message_invalid", list(keys))
    assert snapshot(flow.database) == before
