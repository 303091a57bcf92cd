"""Held-out attacks on issue 14, driven through the REST API of the real app with models written here.

Each attack is a way around "nothing reaches a GMP record except through the model's declared path, by a
person the model allows": the refusal has its status and code, and stored state is as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.services import Gmpflow
from engine.store.models import Message
from tests.api_support import Api
from tests.authority_support import waiting_model
from tests.conftest import ADMIN


def _deploy(engine: Gmpflow, tmp_path: Any, files: dict[str, str]) -> None:
    folder = tmp_path / f"bundle{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    engine.deploy(ADMIN, [folder])


def _variables(engine: Gmpflow, instance_id: int) -> dict[str, Any]:
    return dict(engine.instance_detail(instance_id)["variables"])


# -- a kept message reaches only the events that let its sender in -------------------------------------------
KEPT = [
    # the waiting process's catch event: its message.senders and lane; the planted key
    pytest.param(None, None, "note", id="no-senders-no-lane: integration and admin only"),
    pytest.param("qa", None, "note", id="senders-qa"),
    pytest.param(None, "supervisor", "note", id="lane-supervisor"),
]


@pytest.mark.parametrize(("senders", "lane", "key"), KEPT)
def test_a_message_kept_for_one_process_is_not_delivered_into_another_that_refuses_its_sender(
        engine: Gmpflow, api: Api, tmp_path: Any, senders: str | None, lane: str | None, key: str) -> None:
    """An operator may send ``ping`` to process ``open`` (its catch event names operator); with nothing
    waiting the message is kept. It must not later be delivered to process ``closed``, whose catch event
    for the same message does not let an operator in (nor declares the key)."""
    _deploy(engine, tmp_path, {"open.bpmn": waiting_model("open", senders="operator", fields=key)})
    _deploy(engine, tmp_path, {"closed.bpmn": waiting_model("closed", senders=senders, lane=lane,
                                                            start_roles="admin")})
    kept = api.post("/api/v1/messages", as_="olivia",
                    json={"name": "ping", "correlation_keys": {}, "payload": {key: "planted"}})
    assert (kept.status_code, kept.get_json()["status"]) == (200, "pending")
    started = api.post("/api/v1/process-definitions/closed/instances", as_="ada",
                       json={"business_key": "C-1", "variables": {}})
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]
    while engine.run_jobs_once():
        pass
    assert "ping" not in _variables(engine, instance_id)
    with engine.db.read() as session:
        assert session.scalar(select(Message.status)) == "pending"
    assert [e.after["instance_id"] for e in engine.audit_events(action="message.delivery_refused")] \
        == [instance_id]


def test_a_kept_message_is_delivered_to_an_event_that_lets_its_sender_in(engine: Gmpflow, api: Api,
                                                                           tmp_path: Any) -> None:
    _deploy(engine, tmp_path, {"open.bpmn": waiting_model("open", senders="operator", fields="note",
                                                          start_roles="admin")})
    kept = api.post("/api/v1/messages", as_="olivia",
                    json={"name": "ping", "correlation_keys": {}, "payload": {"note": "ok"}})
    assert kept.get_json()["status"] == "pending"
    started = api.post("/api/v1/process-definitions/open/instances", as_="ada",
                       json={"business_key": "O-1", "variables": {}})
    while engine.run_jobs_once():
        pass
    assert _variables(engine, started.get_json()["id"])["ping"] == {"note": "ok"}
