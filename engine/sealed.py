"""Sealed rows: the row MACs (``engine.integrity``) of the rows Part 11 records depend on, rechecked.

Instance state and status, the finished tasks that left an instance's live tree, task data and
assignment, role grants, deployment status, approval and provenance, users' printed names and active flags
change only through the engine's writers, which seal each row they write with a MAC keyed outside the
database. ``verify_rows`` recomputes every MAC (and each deployment's content hash over its files) and names
the table and id of the first row changed outside gmpflow; a decision that trusts a deployment row's columns
or the version an instance runs checks that row first (``stored_deployment_problem``,
``stored_instance_problem``). Rows that existed before the key are sealed once, as found, when it is
introduced (``seal_unsealed``; the ``audit.keyed`` event counts them). A row deleted outside gmpflow is found
by the checks that follow it from the trail (signatures, anchors), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from engine import integrity
from engine.definitions.bundle import Bundle
from engine.integrity import DEPLOYMENT_SEALED, TASK_SEALED, AuditKey
from engine.packs import SealedTable
from engine.store.dbapi import DbApi, dbapi
from engine.store.models import Deployment, HumanTask, ProcessInstance, User, UserRole


@dataclass(frozen=True)
class RowProblem:
    table: str
    row_id: str
    why: str

    def __str__(self) -> str:
        return f"{self.table} {self.row_id}: {self.why}"


def seal_unsealed(session: Session) -> dict[str, int]:
    """Give every row without a MAC its first one (at key introduction); returns the count per table."""
    key: AuditKey = session.info["audit_key"]
    counts: dict[str, int] = {}

    def each(model: Any, seal: Callable[[Any], None], *options: Any) -> None:
        found = list(session.scalars(select(model).where(model.row_mac.is_(None)).options(*options)))
        for row in found:
            seal(row)
        if found:
            counts[model.__tablename__] = len(found)

    each(ProcessInstance, lambda row: integrity.seal_instance(key, row), undefer(ProcessInstance.state))
    each(HumanTask, lambda row: integrity.seal_task(key, row))
    each(Deployment, lambda row: integrity.seal_deployment(key, row))
    each(User, lambda row: integrity.seal_user(key, row))
    usernames = {row[0]: row[1] for row in session.execute(select(User.id, User.username))}
    each(UserRole, lambda row: setattr(row, "row_mac", key.grant_mac(usernames[row.user_id], row.role_name)))
    return counts


def verify_rows(session: Session, tables: list[SealedTable] | None = None) -> tuple[int, RowProblem | None]:
    """(rows checked, the first row whose MAC or content hash does not match, or None). ``tables``: the
    process packs' append-only sealed tables (``engine.packs``), checked after the engine's own."""
    key: AuditKey = session.info["audit_key"]
    db = dbapi(session)
    checked = 0
    for check in (_instances, _history, _tasks, _grants, _deployments, _users):
        for problem in check(db, key):
            if problem is not None:
                return checked, problem
            checked += 1
    for table in tables or []:  # append-only rows, each sealed as written
        logged, changed = table.verify(session)
        checked += logged
        if changed is not None:
            return checked, RowProblem(table.table, changed, _CHANGED)
    return checked, None


_CHANGED = "the row does not match its MAC (changed outside gmpflow)"


_INSTANCE_ROW = ("SELECT id, deployment_id, business_key, status, initiator, state, row_mac "
                 "FROM process_instance")


def _instance_sealed(key: AuditKey, row: Any) -> bool:
    """Whether a ``_INSTANCE_ROW`` row matches its MAC."""
    id_, deployment_id, business_key, status, initiator, state, mac = row
    values = {"id": id_, "deployment_id": deployment_id, "business_key": business_key, "status": status,
              "initiator": initiator}
    return bool(mac == key.instance_mac(values, state))


def _instances(db: DbApi, key: AuditKey) -> Iterator[RowProblem | None]:
    for row in db.execute(f"{_INSTANCE_ROW} ORDER BY id"):
        yield None if _instance_sealed(key, row) else RowProblem("process_instance", str(row[0]), _CHANGED)


def _history(db: DbApi, key: AuditKey) -> Iterator[RowProblem | None]:
    for id_, instance_id, recorded_at, tasks, mac in db.execute(
            "SELECT id, instance_id, recorded_at, tasks, row_mac FROM task_history ORDER BY id"):
        values = {"instance_id": instance_id, "recorded_at": db.read_time(recorded_at)}
        yield None if mac == key.history_mac(values, tasks) else RowProblem("task_history", str(id_),
                                                                            _CHANGED)


def _tasks(db: DbApi, key: AuditKey) -> Iterator[RowProblem | None]:
    for row in db.execute(f"SELECT id, {', '.join(TASK_SEALED)}, row_mac FROM human_task ORDER BY id"):
        values = dict(zip(TASK_SEALED, row[1:-1], strict=True))
        values["candidate_roles"] = db.read_json(values["candidate_roles"])
        values["data"] = db.read_json(values["data"])
        values["completed_at"] = db.read_time(values["completed_at"])
        yield None if row[-1] == key.task_mac(values) else RowProblem("human_task", str(row[0]), _CHANGED)


def _grants(db: DbApi, key: AuditKey) -> Iterator[RowProblem | None]:
    for user_id, username, role, mac in db.execute(
            "SELECT r.user_id, u.username, r.role_name, r.row_mac FROM user_role r "
            "LEFT JOIN app_user u ON u.id = r.user_id ORDER BY r.user_id, r.role_name"):
        yield None if mac == key.grant_mac(username, role) else RowProblem(
            "user_role", f"{user_id}/{role}", f"the grant of role '{role}' to '{username}' was not made by "
                                              "gmpflow (it does not match its MAC)")


def _deployments(db: DbApi, key: AuditKey) -> Iterator[RowProblem | None]:
    for row in db.execute(f"SELECT id, {', '.join(DEPLOYMENT_SEALED)}, files, row_mac FROM deployment "
                          "ORDER BY id"):
        id_, files, mac = row[0], row[-2], row[-1]
        values = dict(zip(DEPLOYMENT_SEALED, row[1:-2], strict=True))
        values["activated_at"] = db.read_time(values["activated_at"])
        why = deployment_problem(key, values, db.read_json(files), mac)
        yield None if why is None else RowProblem("deployment", str(id_), why)


def deployment_problem(key: AuditKey, values: dict[str, Any], files: dict[str, str] | None,
                       mac: str | None) -> str | None:
    """Why a ``deployment`` row is not as gmpflow wrote it (its MAC, or its files against its content hash),
    or None. ``values``: its ``DEPLOYMENT_SEALED`` columns (times as aware datetimes)."""
    if mac is None or mac != key.deployment_mac(values):
        return _CHANGED
    if Bundle(dict(files or {})).content_hash != values["content_hash"]:
        return "its files do not match its content hash (a model was edited outside gmpflow)"
    return None


def stored_deployment_problem(session: Session, deployment: Deployment) -> str | None:
    """``deployment_problem`` of a row read through the ORM, for a decision that trusts its columns (change
    control's governance): None when it is as gmpflow wrote and sealed it. Raises AuditKeyMissing."""
    values = {name: getattr(deployment, name) for name in DEPLOYMENT_SEALED}
    return deployment_problem(integrity.key_of(session), values, deployment.files, deployment.row_mac)


def stored_instance_problem(session: Session, instance_id: int) -> str | None:
    """Why a ``process_instance`` row is not as gmpflow wrote it, or None: for a decision that trusts which
    process an instance runs (its ``deployment_id``). The engine does not recheck a row at every step (its
    state is large); a governed decision is rare enough to. Raises AuditKeyMissing."""
    row = dbapi(session).first(f"{_INSTANCE_ROW} WHERE id = :id", {"id": instance_id})
    if row is None:
        return "there is no such instance"
    return None if _instance_sealed(integrity.key_of(session), row) else _CHANGED


def _users(db: DbApi, key: AuditKey) -> Iterator[RowProblem | None]:
    for id_, username, full_name, active, password_hash, mac in db.execute(
            "SELECT id, username, full_name, active, password_hash, row_mac FROM app_user ORDER BY id"):
        values = {"username": username, "full_name": full_name, "active": bool(active),
                  "password_hash": password_hash}
        yield None if mac == key.user_mac(values) else RowProblem("app_user", str(id_), _CHANGED)
