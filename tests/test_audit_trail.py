"""The audit trail is append-only and hash-chained: tampering in the database is detected."""

from __future__ import annotations

import enum
import json
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.audit import canonical_json, normalized
from tests.conftest import ADMIN, ROOT

DEMO = ROOT / "gmp" / "processes" / "demo_approval"


@pytest.fixture
def trail(engine, users):  # type: ignore[no-untyped-def]
    """A database with some history: a deployment, an instance, a completed task."""
    engine.deploy(ADMIN, [DEMO])
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "AUD-1")
    task = engine.list_tasks(users["operator"], instance_id=instance.id)[0]
    engine.complete_task(users["operator"], task.id, {"quantity": 2, "comment": "audit me"})
    assert engine.verify_audit().ok
    return engine


def raw(engine, *statements: str) -> None:  # type: ignore[no-untyped-def]
    """Run SQL directly, as someone with database access would, bypassing the engine."""
    with engine.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


@pytest.fixture
def without_guards(trail):  # type: ignore[no-untyped-def]
    """Switch the append-only triggers off, as an attacker with database rights could (restored after)."""
    if trail.db.is_postgres:
        raw(trail, "ALTER TABLE audit_event DISABLE TRIGGER USER")
        yield trail
        raw(trail, "ALTER TABLE audit_event ENABLE TRIGGER USER")
    else:
        raw(trail, "DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete")
        yield trail  # the SQLite file is this test's own


@pytest.mark.parametrize("statement", ["UPDATE audit_event SET actor_id = 'mallory' WHERE seq = 2",
                                       "DELETE FROM audit_event WHERE seq = 2"], ids=["update", "delete"])
def test_the_database_refuses_update_and_delete_on_the_audit_trail(trail, statement):
    with pytest.raises(DBAPIError):
        raw(trail, statement)
    assert trail.verify_audit().ok


def test_every_change_is_recorded_with_actor_time_and_values(trail, users):
    completed = [e for e in trail.audit_events(limit=1000) if e.action == "task.completed"]
    assert len(completed) == 1
    event = completed[0]
    assert (event.actor_id, event.actor_name) == (users["operator"].username, users["operator"].full_name)
    assert event.after["data"] == {"quantity": 2, "comment": "audit me"}
    assert event.at.tzinfo is not None


TAMPERING = {
    "edited": [
        "UPDATE audit_event SET after = '{\"data\": {\"quantity\": 999}}' WHERE action = 'task.completed'"],
    "deleted": ["DELETE FROM audit_event WHERE seq = 3"],
    "deleted-last": ["DELETE FROM audit_event WHERE seq = (SELECT max(seq) FROM audit_event)"],
    "inserted": ["UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 4",
                 "INSERT INTO audit_event (seq, at, actor_id, actor_name, action, object_type, object_id, "
                 "object_label, prev_hash, hash) SELECT 4, at, 'mallory', 'Mallory', 'task.completed', "
                 "'task', '1', 'forged', hash, hash FROM audit_event WHERE seq = 3",
                 "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1004"],
    "reordered": ["UPDATE audit_event SET seq = -1 WHERE seq = 3",
                  "UPDATE audit_event SET seq = 3 WHERE seq = 4",
                  "UPDATE audit_event SET seq = 4 WHERE seq = -1"],
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_tampering_with_the_trail_is_detected_and_the_first_broken_link_named(without_guards, case):
    trail = without_guards
    raw(trail, *TAMPERING[case])
    report = trail.verify_audit()
    assert not report.ok
    assert report.first_broken is not None and report.first_broken >= 3
    assert report.reason



class _Kind(str, enum.Enum):
    OPEN = "open"


@pytest.mark.parametrize("value", [
    {"state": "open"},
    {"b": 1, "a": [1.5, True, None, {"z": "ü", "y": -0.0}]},
    {"state": _Kind.OPEN},  # an enum: recorded as its value, a plain str
    {"pair": (1, 2)},  # a tuple: recorded as a list
    {"on": date(2026, 1, 5)},  # not JSON: recorded as its text
    [{"b": 2, "a": 1}, "x"],
    "text", 5, None,
])
def test_an_audited_value_is_recorded_in_exactly_the_form_it_reads_back_from_the_database(value):
    expected = None if value is None else json.loads(canonical_json(value))
    got = normalized(value)
    assert repr(got) == repr(expected)  # same values, same types, keys in the same (sorted) order
    if isinstance(value, (dict, list)):
        assert got is not value  # a copy: the caller may change its own afterwards
