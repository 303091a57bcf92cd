"""Fixtures for identity, signature and record tests (a plugin of the root conftest.py; holds no tests).

``people`` creates real accounts (signing checks the password against the database) and returns
their principals by username; ``signed_release`` deploys tests/bpmn/signed_release.bpmn.
"""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, profiles

from engine import identity
from engine.identity import Principal
from engine.services import Gmpflow
from tests.conftest import ADMIN

PASSWORD = "correct horse battery"
PEOPLE = {"olivia": ["operator"], "oscar": ["operator"], "quinn": ["qa"], "quentin": ["qa"],
          "dana": ["operator", "qa"], "ada": ["admin"], "paula": ["planner"]}


@pytest.fixture
def people(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> dict[str, Principal]:
    # argon2's cheapest parameters: the production cost (~0.3 s a hash here) would dominate these tests
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    for username, roles in PEOPLE.items():
        engine.add_user(ADMIN, username, f"{username.title()} Example", PASSWORD, roles)
    return {username: engine.principal(username) for username in PEOPLE}


@pytest.fixture
def signed_release(deploy):  # type: ignore[no-untyped-def]
    return deploy("signed_release.bpmn")


def sig(username: str, meaning: str, password: str = PASSWORD) -> dict[str, str]:
    return {"username": username, "password": password, "meaning": meaning}


def open_task(engine: Gmpflow, who: Principal, instance_id: int, element_id: str) -> Any:
    tasks = [t for t in engine.list_tasks(who, instance_id=instance_id) if t.element_id == element_id]
    assert len(tasks) == 1, tasks
    return tasks[0]


def run_to_approval(engine: Gmpflow, people: dict[str, Principal], *, initiator: str = "olivia",
                    performer: str = "olivia", witness: str = "oscar", key: str = "BATCH-1") -> Any:
    """Start an instance, record values, witness them; returns the instance (approve task open)."""
    instance = engine.start_instance(people[initiator].actor, "signed_release", key)
    task = open_task(engine, people[performer], instance.id, "record_values")
    engine.complete_task(people[performer], task.id, {"quantity_kg": 12.5, "lot": key})
    task = open_task(engine, people[witness], instance.id, "witness")
    engine.complete_task(people[witness], task.id, {"witnessed": True}, sig(witness, "Verified"))
    return instance
