"""Rows that Part 11 records depend on carry a MAC keyed outside the database: a direct UPDATE (or INSERT)
of instance state, task data, role grants, deployment status and provenance or a printed name is found by
``gmpflow audit verify``, which names the table and the row; the engine's own writes keep every MAC."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update

from engine.definitions.bundle import Bundle, read_bundle
from engine.services import Gmpflow
from engine.states import InstanceStatus
from engine.store.models import Deployment, User
from tests.api_support import body
from tests.conftest import ADMIN, ROOT
from tests.engine_support import request_of
from tests.tamper_support import raw

DEMO = ROOT / "gmp" / "processes" / "demo_approval"
PASSWORD = "correct horse battery"


@dataclass
class World:
    engine: Gmpflow
    instance: int
    completed_task: int
    open_task: int
    deployment: int
    olivia: int


@pytest.fixture
def world(engine, users) -> World:  # type: ignore[no-untyped-def]
    dep, _ = engine.deploy(ADMIN, [DEMO])
    engine.add_user(ADMIN, "olivia", "Olivia Operator", PASSWORD, ["operator"])
    instance = engine.start_instance(users["operator"].actor, "demo_approval", "ROW-1")
    task = engine.list_tasks(users["operator"], instance_id=instance.id)[0]
    engine.complete_task(users["operator"], task.id, {"quantity": 2, "comment": "sealed rows"})
    following = engine.list_tasks(users["admin"], instance_id=instance.id)[0]
    with engine.db.read() as session:
        olivia = session.scalar(select(User.id).where(User.username == "olivia"))
    assert engine.verify_audit().ok
    return World(engine, instance.id, task.id, following.id, dep.id, int(olivia or 0))


def sql(statement: str) -> Callable[[World], None]:
    return lambda w: raw(w.engine, statement, instance=w.instance, completed=w.completed_task,
                         open=w.open_task, deployment=w.deployment, olivia=w.olivia)


def edit_files(w: World) -> None:
    """A model edited in place (through SQLAlchemy Core: the JSON column's own binding)."""
    with w.engine.db.engine.begin() as conn:
        files = conn.execute(select(Deployment.files).where(Deployment.id == w.deployment)).scalar_one()
        name = next(n for n in files if n.endswith(".bpmn"))
        files = {**files, name: files[name].replace("</bpmn:definitions>", "<!-- x --></bpmn:definitions>")}
        conn.execute(update(Deployment).where(Deployment.id == w.deployment).values(files=files))


# case: (tampering, table, the row id verify names)
TAMPERING: dict[str, tuple[Callable[[World], None], str, Callable[[World], str]]] = {
    "instance state": (sql("UPDATE process_instance SET state = replace(state, 'sealed rows', 'forged') "
                           "WHERE id = :instance"), "process_instance", lambda w: str(w.instance)),
    "instance status": (sql("UPDATE process_instance SET status = 'completed' WHERE id = :instance"),
                        "process_instance", lambda w: str(w.instance)),
    "instance initiator": (sql("UPDATE process_instance SET initiator = 'mallory' WHERE id = :instance"),
                           "process_instance", lambda w: str(w.instance)),
    "task data": (sql("UPDATE human_task SET data = '{\"quantity\": 999, \"comment\": \"sealed rows\"}' "
                      "WHERE id = :completed"), "human_task", lambda w: str(w.completed_task)),
    "task assignee": (sql("UPDATE human_task SET assignee = 'mallory', state = 'claimed' WHERE id = :open"),
                      "human_task", lambda w: str(w.open_task)),
    "task lane": (sql("UPDATE human_task SET lane = 'operator', candidate_roles = '[\"operator\"]' "
                      "WHERE id = :open"), "human_task", lambda w: str(w.open_task)),
    "role grant added": (sql("INSERT INTO user_role (user_id, role_name) VALUES (:olivia, 'qa')"),
                         "user_role", lambda w: f"{w.olivia}/qa"),
    "role grant with a copied MAC": (
        sql("INSERT INTO user_role (user_id, role_name, row_mac) SELECT user_id, 'admin', row_mac "
            "FROM user_role WHERE user_id = :olivia AND role_name = 'operator'"),
        "user_role", lambda w: f"{w.olivia}/admin"),
    "deployment status": (sql("UPDATE deployment SET status = 'retired' WHERE id = :deployment"),
                          "deployment", lambda w: str(w.deployment)),
    "deployment approval": (sql("UPDATE deployment SET approved_by_instance_id = :instance "
                                "WHERE id = :deployment"), "deployment", lambda w: str(w.deployment)),
    "deployment holder": (sql("UPDATE deployment SET change_request_instance_id = :instance "
                              "WHERE id = :deployment"), "deployment", lambda w: str(w.deployment)),
    "deployment provenance": (sql("UPDATE deployment SET activated_via = 'init' WHERE id = :deployment"),
                              "deployment", lambda w: str(w.deployment)),
    "deployment activation time": (sql("UPDATE deployment SET activated_at = NULL WHERE id = :deployment"),
                                   "deployment", lambda w: str(w.deployment)),
    "deployment files": (edit_files, "deployment", lambda w: str(w.deployment)),
    "printed name": (sql("UPDATE app_user SET full_name = 'Quinn QA' WHERE id = :olivia"),
                     "app_user", lambda w: str(w.olivia)),
    "user deactivated": (sql("UPDATE app_user SET active = false WHERE id = :olivia"),
                         "app_user", lambda w: str(w.olivia)),
    "password hash": (sql("UPDATE app_user SET password_hash = 'known' WHERE id = :olivia"),
                      "app_user", lambda w: str(w.olivia)),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_a_direct_write_to_a_sealed_row_is_found_naming_table_and_id(world, case):
    tamper, table, row_id = TAMPERING[case]
    tamper(world)
    report = world.engine.verify_audit()
    assert not report.ok
    assert (report.table, report.row_id) == (table, row_id(world))
    assert report.reason and report.reason.startswith(f"{table} {row_id(world)}: ")


def test_the_api_names_the_changed_row(world, api):  # type: ignore[no-untyped-def]
    sql("UPDATE human_task SET data = '{\"quantity\": 999}' WHERE id = :completed")(world)
    response = api.get("/api/v1/audit/verify", as_="ada")
    assert response.status_code == 200
    assert body(response) | {"checked": 0} == {
        "ok": False, "checked": 0, "first_broken": None, "table": "human_task",
        "row_id": str(world.completed_task), "reason": body(response)["reason"]}


def test_a_mac_removed_from_a_row_is_found(world):
    sql("UPDATE app_user SET row_mac = NULL WHERE id = :olivia")(world)
    report = world.engine.verify_audit()
    assert (report.ok, report.table) == (False, "app_user")


ENGINE_WRITES: dict[str, Callable[[World, Any], Any]] = {
    "claim and unclaim": lambda w, users: (w.engine.claim_task(users["supervisor"], w.open_task),
                                           w.engine.unclaim_task(users["supervisor"], w.open_task)),
    "suspend and resume": lambda w, users: (
        w.engine.change_instance_status(request_of(w.engine, ADMIN, "hold"), w.instance, "suspend"),
        w.engine.change_instance_status(request_of(w.engine, ADMIN, "go on"), w.instance, "resume")),
    "terminate": lambda w, users: w.engine.change_instance_status(request_of(w.engine, ADMIN, "stop"),
                                                                  w.instance, "terminate"),
    "grant and remove a role": lambda w, users: (w.engine.grant_role(ADMIN, "olivia", "qa", "cover"),
                                                 w.engine.remove_role(ADMIN, "olivia", "qa", "back")),
    "deactivate and activate": lambda w, users: (
        w.engine.set_user_active(ADMIN, "olivia", False, "left"),
        w.engine.set_user_active(ADMIN, "olivia", True, "back")),
    "password reset and change": lambda w, users: w.engine.change_password(
        "olivia", w.engine.reset_password(ADMIN, "olivia", "forgot"), "a new good password"),
    "a new version retires the old": lambda w, users: w.engine.deploy(ADMIN, bundle=_changed_demo(w)),
}


def _changed_demo(w: World) -> Bundle:
    files = dict(read_bundle([DEMO]).files)
    name = next(n for n in files if n.endswith(".bpmn"))
    files[name] = files[name].replace("</bpmn:definitions>", "<!-- v2 --></bpmn:definitions>")
    return Bundle(files)


@pytest.mark.parametrize("case", ENGINE_WRITES, ids=list(ENGINE_WRITES))
def test_the_engines_own_writes_keep_every_row_sealed(world, users, case):
    ENGINE_WRITES[case](world, users)
    report = world.engine.verify_audit()
    assert report.ok, report.reason


def test_an_instance_failed_by_a_job_and_retried_stays_sealed(engine, deploy, users, clock):
    """The job runner's status changes: failed after the last attempt, running again after a retry."""
    deploy("service_retry_incident.bpmn")
    instance = engine.start_instance(users["operator"].actor, "service_retry_incident", None,
                                     {"fail_times": 3})
    while not engine.list_incidents():
        engine.run_jobs_once()
        clock.advance(seconds=5)
    assert engine.instance_detail(instance.id)["instance"].status == InstanceStatus.FAILED
    assert engine.verify_audit().ok
    engine.retry_incident(users["admin"].actor, engine.list_incidents()[0].id, "ERP is back")
    assert engine.verify_audit().ok
    engine.run_jobs_once()
    assert engine.instance_detail(instance.id)["instance"].status == InstanceStatus.COMPLETED
    assert engine.verify_audit().ok


def test_rows_from_before_the_key_are_sealed_as_found_when_it_is_introduced(database, clock):
    """A database upgraded from before the key: its rows have no MAC until the key is introduced (``gmpflow
    init``), and the audit.keyed event says how many were sealed, as found."""
    engine = Gmpflow(database, clock, change_control="off")
    raw(engine, "INSERT INTO app_user (username, full_name, password_hash, active, failed_attempts, locked, "
                "must_change_password, password_changed_at, created_at) VALUES ('olivia', 'Olivia Operator', "
                "'x', true, 0, false, false, :at, :at)", at=clock.now())
    engine.record_start()
    keyed = engine.audit_events(action="audit.keyed")
    assert [e.after["sealed_rows"] for e in keyed] == [{"app_user": 1}]
    assert engine.verify_audit().ok
    raw(engine, "UPDATE app_user SET full_name = 'Quinn QA' WHERE username = 'olivia'")
    assert engine.verify_audit().table == "app_user"
