"""The hot path writes and reads instance, task and job rows on the DB-API (engine.runtime.rows); every
other query uses the ORM models. Both must store and read the same values, on SQLite and PostgreSQL:
UTC datetimes, JSON columns, NULLs, and a unit of work that rolls back leaves nothing behind."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from engine.errors import Conflict, NotFound
from engine.runtime import rows
from engine.services import Gmpflow
from engine.states import JobState, TaskState
from engine.store.models import HumanTask, Job, ProcessInstance
from tests.conftest import ADMIN, ROOT

DEMO = ROOT / "gmp" / "processes" / "demo_approval"
BERLIN = timezone(timedelta(hours=1))


def test_task_row_has_exactly_the_columns_of_the_human_task_table_but_its_mac() -> None:
    # the row MAC is written with every change and read only by verify (engine.sealed)
    assert [f.name for f in fields(rows.TaskRow)] == [
        name for name in HumanTask.__table__.columns.keys() if name != "row_mac"]


def test_instance_row_carries_every_column_but_the_state_and_its_mac() -> None:
    columns = set(ProcessInstance.__table__.columns.keys()) - {"state", "row_mac"}
    assert columns <= {f.name for f in fields(rows.InstanceRow)}


@pytest.fixture
def instance_id(engine: Gmpflow, users) -> int:  # type: ignore[no-untyped-def]
    engine.deploy(ADMIN, [DEMO])
    return engine.start_instance(users["operator"].actor, "demo_approval", "ROWS").id


def test_a_task_written_on_the_dbapi_reads_the_same_through_the_orm(engine: Gmpflow,
                                                                    instance_id: int) -> None:
    due = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=BERLIN)
    with engine.db.transaction() as uow:
        task_id = rows.insert_task(uow.db, dict(
            instance_id=instance_id, task_guid="0f5d9a43-0000-4000-8000-000000000001", element_id="review",
            name="Prüfen «ä»", lane="qa", candidate_roles=["qa", "admin"], form_id=None, instructions=None,
            signature_meaning="Reviewed", signature_distinct_from=None, due_at=due, state=TaskState.OPEN,
            created_at=due, data={"nested": {"n": 1.5, "list": [1, None, "x"]}}), uow.audit_key)
    with engine.db.read() as session:
        orm = session.get(HumanTask, task_id)
        assert orm is not None
        assert (orm.name, orm.candidate_roles, orm.due_at, orm.data, orm.completed_at) == (
            "Prüfen «ä»", ["qa", "admin"], due, {"nested": {"n": 1.5, "list": [1, None, "x"]}}, None)
        assert orm.due_at.utcoffset() == timedelta(0)  # stored and read as UTC
    with engine.db.query() as db:
        raw = rows.load_task(db, task_id)
    assert {f.name: getattr(raw, f.name) for f in fields(raw)} == {
        name: getattr(orm, name) for name in HumanTask.__table__.columns.keys() if name != "row_mac"}


def test_a_task_written_by_the_orm_reads_the_same_on_the_dbapi(engine: Gmpflow, instance_id: int) -> None:
    at = datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=BERLIN)
    with engine.db.unit_of_work() as session:
        orm = HumanTask(instance_id=instance_id, task_guid="0f5d9a43-0000-4000-8000-000000000002",
                        element_id="approve", name="Approve", lane=None, candidate_roles=[],
                        state=TaskState.CLAIMED,
                        assignee="quinn", created_at=at, completed_at=None, data=None)
        session.add(orm)
        session.flush()
        task_id = orm.id
    with engine.db.query() as db:
        raw = rows.load_task(db, task_id)
    assert {f.name: getattr(raw, f.name) for f in fields(raw)} == {
        name: getattr(orm, name) for name in HumanTask.__table__.columns.keys() if name != "row_mac"}
    assert raw.created_at == at and raw.created_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused_as_the_orm_refuses_them(engine: Gmpflow) -> None:
    with engine.db.query() as db, pytest.raises(ValueError, match="naive"):
        db.time(datetime(2026, 1, 1, 8, 0))


def test_a_stale_instance_row_is_a_conflict_and_changes_nothing(engine: Gmpflow, instance_id: int) -> None:
    with engine.db.transaction() as uow:
        row = rows.load_instance(uow.db, instance_id)
    row.lock_version -= 1  # someone else wrote the row since it was read
    with pytest.raises(Conflict) as refused, engine.db.transaction() as uow:
        rows.update_instance(uow.db, row, "{}", uow.audit_key)
    assert refused.value.code == "instance_changed"
    with engine.db.query() as db:
        assert rows.instance_state(db, instance_id) != "{}"


def test_driver_errors_surface_as_sqlalchemy_errors_and_roll_back(engine: Gmpflow, instance_id: int) -> None:
    with engine.db.query() as db:
        [existing] = [t for t, *_ in rows.inbox(db, rows.InboxFilter((TaskState.OPEN,), None, "x"))]
    values = {f.name: getattr(existing, f.name) for f in fields(existing) if f.name != "id"}
    with pytest.raises(IntegrityError), engine.db.transaction() as uow:
        existing.state, existing.assignee = TaskState.CLAIMED, "olivia"
        rows.save_task(uow.db, existing, uow.audit_key)
        rows.insert_task(uow.db, values, uow.audit_key)  # the same task guid twice
    with engine.db.query() as db:
        assert [(t.state, t.assignee)
                for t, *_ in rows.inbox(db, rows.InboxFilter((TaskState.OPEN,), None, "x"))] \
            == [(TaskState.OPEN, None)]


def test_jobs_are_claimed_once_and_finished_only_by_their_holder(engine: Gmpflow, instance_id: int) -> None:
    now = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    with engine.db.transaction() as uow:
        rows.insert_jobs(uow.db, [dict(kind="service", instance_id=instance_id, deployment_id=None,
                                       task_guid="g",
                                       element_id="notify", operation="echo", payload={"params": {"q": 1}},
                                       state=JobState.PENDING, due_at=now, attempts=0, max_attempts=3,
                                       created_at=now, updated_at=now)])
    with engine.db.query() as db:
        assert rows.any_due(db, now) and not rows.any_due(db, now - timedelta(seconds=1))
    with engine.db.transaction() as uow:
        [job] = rows.claim_due(uow.db, "worker-a", now, now + timedelta(minutes=5), 10)
    assert (job.operation, job.payload, job.attempts) == ("echo", {"params": {"q": 1}}, 1)
    with engine.db.transaction() as uow:
        assert rows.claim_due(uow.db, "worker-b", now, now + timedelta(minutes=5), 10) == []  # held by a
        assert not rows.finish_job(uow.db, job.id, "worker-b", now)
        assert rows.finish_job(uow.db, job.id, "worker-a", now)
    with engine.db.read() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and (stored.state, stored.locked_by, stored.attempts) == (
            JobState.DONE, None, 1)


def test_an_unknown_task_or_instance_is_not_found(engine: Gmpflow) -> None:
    with engine.db.query() as db:
        with pytest.raises(NotFound):
            rows.load_task(db, 999)
        with pytest.raises(NotFound):
            rows.load_instance(db, 999)
        with pytest.raises(NotFound):
            rows.latest_active(db, "no_such_process")


def test_the_inbox_shows_mine_first_then_by_due_time_with_undated_tasks_last(engine: Gmpflow, users) -> None:  # type: ignore[no-untyped-def]
    engine.deploy(ADMIN, [DEMO])
    op = users["operator"]
    undated, later, sooner, mine = (engine.start_instance(op.actor, "demo_approval", k).id for k in "ABCD")
    now = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    with engine.db.transaction() as uow:
        for instance, hours in ((later, 2), (sooner, 1)):
            uow.db.execute("UPDATE human_task SET due_at = :due WHERE instance_id = :i",
                           {"due": uow.db.time(now + timedelta(hours=hours)), "i": instance})
    [task] = engine.list_tasks(op, instance_id=mine)
    engine.claim_task(op, task.id)
    assert [t.instance_id for t in engine.list_tasks(op)] == [mine, sooner, later, undated]
