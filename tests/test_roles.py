"""Roles are data: an admin adds one with a reason (``POST /api/v1/roles``, ``gmpflow roles add``); lanes may
then name it, admins grant it, and only its holders work on its lane's tasks. Any signed-in user lists them.
"""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from click.testing import CliRunner
from flask import Flask

from engine import identity
from engine.cli import main
from engine.definitions.bundle import Bundle
from engine.errors import DefinitionError
from engine.services import Gmpflow
from tests.api_support import DEMO, Api, start_demo
from tests.conftest import ADMIN
from tests.hostile_support import snapshot
from webapp import create_app

WEIGHER = {"name": "weigher", "description": "Weighs dispensed material", "reason": "new dispensing SOP"}


@pytest.fixture
def app(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    return create_app({"TESTING": True, "SECRET_KEY": "roles"}, engine=engine)


def refused(response: Any, status: int, code: str) -> None:
    assert (response.status_code, response.get_json()["code"]) == (status, code), response.get_json()


def test_an_admin_adds_a_role_with_a_reason_and_everyone_signed_in_sees_it(api: Api, engine: Gmpflow) -> None:
    response = api.post("/api/v1/roles", as_="ada", json=WEIGHER)
    assert (response.status_code, response.get_json()) == (201, {"name": "weigher",
                                                                 "description": "Weighs dispensed material"})
    listed = api.get("/api/v1/roles", as_="olivia").get_json()
    assert {"name": "weigher", "description": "Weighs dispensed material"} in listed
    assert {"operator", "qa", "admin"} <= {r["name"] for r in listed}
    [event] = [e for e in engine.audit_events(object_type="role") if e.action == "role.created"]
    assert (event.actor_id, event.object_id, event.reason) == ("ada", "weigher", "new dispensing SOP")
    assert event.after == {"name": "weigher", "description": "Weighs dispensed material"}


@pytest.mark.parametrize("who", ["olivia", "sam", "quinn", "paula"])
def test_only_an_admin_adds_a_role(api: Api, engine: Gmpflow, who: str) -> None:
    api.token(who)
    before = snapshot(engine.db)
    refused(api.post("/api/v1/roles", as_=who, json=WEIGHER), 403, "role_required")
    assert snapshot(engine.db) == before


def test_listing_roles_needs_a_token(api: Api) -> None:
    refused(api.get("/api/v1/roles"), 401, "unauthenticated")


BAD_ROLES = [  # (body, status, code)
    ({**WEIGHER, "name": "Weigher"}, 400, "validation_failed"),
    ({**WEIGHER, "name": "w"}, 400, "validation_failed"),
    ({**WEIGHER, "name": "weigh er"}, 400, "validation_failed"),
    ({**WEIGHER, "name": "../admin"}, 400, "validation_failed"),
    ({**WEIGHER, "name": "1st_shift"}, 400, "validation_failed"),
    ({**WEIGHER, "name": "qa,admin"}, 400, "validation_failed"),
    ({**WEIGHER, "name": "x" * 51}, 400, "validation_failed"),
    ({**WEIGHER, "name": 7}, 400, "validation_failed"),
    ({**WEIGHER, "reason": ""}, 400, "validation_failed"),
    ({**WEIGHER, "reason": "   "}, 400, "validation_failed"),
    ({"name": "weigher", "description": "x"}, 400, "validation_failed"),
    ({**WEIGHER, "description": "x" * 301}, 400, "validation_failed"),
    ({**WEIGHER, "name": "qa"}, 409, "role_exists"),
    ({**WEIGHER, "name": "admin"}, 409, "role_exists"),
]


@pytest.mark.parametrize("body,status,code", BAD_ROLES)
def test_a_bad_or_duplicate_role_is_refused_and_nothing_changes(api: Api, engine: Gmpflow,
                                                                body: dict[str, Any], status: int,
                                                                code: str) -> None:
    api.token("ada")
    before = snapshot(engine.db)
    refused(api.post("/api/v1/roles", as_="ada", json=body), status, code)
    assert snapshot(engine.db) == before


@pytest.mark.parametrize("name,code", [("Weigher", "role_name_invalid"), ("qa", "role_exists")])
def test_the_engine_refuses_what_the_api_schema_would(engine: Gmpflow, name: str, code: str) -> None:
    from engine.errors import GmpflowError

    with pytest.raises(GmpflowError) as refusal:
        engine.add_role(ADMIN, name, "d", "r")
    assert refusal.value.code == code


def test_gmpflow_roles_add_creates_a_role(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.cli._engine", lambda: engine)
    result = CliRunner().invoke(main, ["roles", "add", "weigher", "--description", "Weighs material"])
    assert (result.exit_code, result.output) == (0, "role weigher added\n")
    assert "weigher" in {r.name for r in engine.list_roles()}
    [event] = [e for e in engine.audit_events(object_type="role")]
    assert event.actor_id.startswith("cli:") and event.reason == "added with gmpflow roles add"
    again = CliRunner().invoke(main, ["roles", "add", "weigher", "--description", "again"])
    assert again.exit_code == 1 and "role_exists" in again.output


def _weigher_approval() -> Bundle:
    """The demo approval with its review lane given to the role ``weigher``."""
    text = (DEMO / "demo_approval.bpmn").read_text()
    assert '<bpmn:lane id="lane_supervisor" name="supervisor">' in text
    return Bundle({"demo_approval.bpmn": text.replace('<bpmn:lane id="lane_supervisor" name="supervisor">',
                                                      '<bpmn:lane id="lane_supervisor" name="weigher">')})


def test_a_new_role_can_name_a_lane_be_granted_and_works_that_lane(api: Api, engine: Gmpflow) -> None:
    with pytest.raises(DefinitionError) as unknown:
        engine.deploy(ADMIN, bundle=_weigher_approval())
    assert "unknown_role" in str(unknown.value.context)
    assert api.post("/api/v1/roles", as_="ada", json=WEIGHER).status_code == 201
    assert engine.lint_bundle(_weigher_approval()) == []
    engine.deploy(ADMIN, bundle=_weigher_approval())
    api.ensure_user("oscar")
    granted = api.post("/api/v1/users/oscar/roles", as_="ada", json={"role": "weigher", "reason": "trained"})
    assert granted.get_json()["roles"] == ["operator", "weigher"]
    instance = start_demo(api)["id"]
    [request] = api.get(f"/api/v1/tasks?instance_id={instance}", as_="olivia").get_json()
    api.post(f"/api/v1/tasks/{request['id']}/complete", as_="olivia",
             json={"data": {"quantity": 5, "comment": "gloves"}})
    [review] = api.get(f"/api/v1/tasks?instance_id={instance}", as_="oscar").get_json()
    assert review["lane"] == "weigher"
    refused(api.post(f"/api/v1/tasks/{review['id']}/claim", as_="sam"), 403, "role_required")
    assert api.post(f"/api/v1/tasks/{review['id']}/claim", as_="oscar").status_code == 200
