"""One way to write: every write transaction is a unit of work (``engine.store.db``), whose commit writes the
audit events it recorded, chained, before the driver commits. No global SQLAlchemy listener carries the
trail: a change and the events that record it commit together or not at all."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit
from engine.services import Gmpflow
from engine.store.models import AuditEvent, Setting
from tests.conftest import ADMIN, ROOT

PROJECT_PACKAGES = ("engine", "gmp", "webapp", "connectors")


def project_modules() -> list[str]:
    """Every module of the project's packages but the migrations (run by Alembic) and scenario tests."""
    found = []
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            if "migrations" in relative.parts or path.name.startswith("test_"):
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            found.append(".".join(parts))
    return found


def session_listeners(session: Session) -> dict[str, list[object]]:
    """The listeners a session's events would call, by event name (class-level ones included)."""
    names: list[str] = [str(name) for name in session.dispatch._event_names]
    found = {name: list(getattr(session.dispatch, name)) for name in names}
    return {name: listeners for name, listeners in found.items() if listeners}


def test_the_project_registers_no_global_session_listener() -> None:
    modules = project_modules()
    assert "engine.audit" in modules and "engine.store.dbapi" in modules
    for module in modules:
        importlib.import_module(module)
    assert session_listeners(Session()) == {}


def test_the_listener_check_sees_a_class_level_listener() -> None:
    from sqlalchemy import event

    def listener(session: Session) -> None:
        pass

    event.listen(Session, "before_commit", listener)
    try:
        assert session_listeners(Session()) == {"before_commit": [listener]}
    finally:
        event.remove(Session, "before_commit", listener)
    assert session_listeners(Session()) == {}


def test_sessions_of_the_database_carry_no_listener(engine: Gmpflow) -> None:
    with engine.db.read() as session:
        assert session_listeners(session) == {}
    with engine.db.unit_of_work() as session:
        assert session_listeners(session) == {}


def trail_length(engine: Gmpflow) -> int:
    with engine.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def setting(engine: Gmpflow, key: str) -> str | None:
    with engine.db.read() as session:
        row = session.get(Setting, key)
        return None if row is None else row.value


def change_a_setting(engine: Gmpflow, session: Session, key: str) -> None:
    """An ORM change and the event that records it."""
    session.add(Setting(key=key, value="on"))
    audit.record(session, ADMIN, "setting.changed", "setting", key, key, at=engine.clock.now(),
                 after={"value": "on"})


class Boom(Exception):
    pass


@pytest.mark.parametrize("path", ["transaction", "unit_of_work"])
def test_an_event_recorded_in_a_unit_that_rolls_back_never_reaches_the_trail(engine: Gmpflow,
                                                                             path: str) -> None:
    before = trail_length(engine)
    with pytest.raises(Boom):
        if path == "transaction":
            with engine.db.transaction() as uow:
                change_a_setting(engine, uow.session, "rolled_back")
                assert len(uow.audit_pending) == 1
                raise Boom
        else:
            with engine.db.unit_of_work() as session:
                change_a_setting(engine, session, "rolled_back")
                raise Boom
    assert (trail_length(engine), setting(engine, "rolled_back")) == (before, None)
    with engine.db.unit_of_work() as session:  # the next unit numbers on from the chain's head: no gap
        change_a_setting(engine, session, "committed")
    assert (trail_length(engine), setting(engine, "committed")) == (before + 1, "on")
    assert engine.verify_audit().ok


def test_a_write_through_the_orm_session_is_chained_in_its_own_transaction(engine: Gmpflow) -> None:
    """The events are inserted after the change and before the driver commits: a failure after the chaining
    (here an ``on_commit`` callback, where ``engine.failpoints`` kills the process) loses both."""
    before = trail_length(engine)
    seen: list[int] = []
    with pytest.raises(Boom):
        with engine.db.unit_of_work() as session:
            change_a_setting(engine, session, "crashed")

            def crash() -> None:  # the events are in the transaction already, not yet committed
                seen.append(int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0))
                raise Boom

            audit.unit_of(session).on_commit(crash)
    assert seen == [before + 1]
    assert (trail_length(engine), setting(engine, "crashed")) == (before, None)
    assert engine.verify_audit().ok


def test_recording_outside_a_unit_of_work_is_refused(engine: Gmpflow) -> None:
    with engine.db.read() as session, pytest.raises(TypeError, match="unit of work"):
        audit.record(session, ADMIN, "setting.changed", "setting", "x", "x", at=engine.clock.now())
    with pytest.raises(TypeError, match="unit of work"):
        audit.record(Session(), ADMIN, "setting.changed", "setting", "x", "x", at=engine.clock.now())

