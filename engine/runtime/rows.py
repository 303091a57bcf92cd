"""The rows the hot path reads and writes, on the DB-API (see ``engine.store.dbapi`` for why).

``InstanceRow`` and ``TaskRow`` carry the columns of ``process_instance`` and ``human_task`` under the
names of the ORM models (``ProcessInstance``, ``HumanTask``), so code that only reads attributes takes
either. The ORM models remain the schema and serve every other query.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from engine.errors import Conflict, NotFound
from engine.integrity import TASK_SEALED, AuditKey
from engine.states import DeploymentStatus, JobState, TaskState
from engine.store.dbapi import DbApi, numbered, placeholders
from engine.store.wakeup import JOBS_CHANNEL

# -- deployments ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeploymentRef:
    """What an instance needs of its deployment (``Deployment`` has the same attributes)."""

    id: int
    key: str
    version: int
    content_hash: str


def latest_active(db: DbApi, key: str) -> DeploymentRef:
    """The version new instances of ``key`` start on. Raises NotFound."""
    row = db.first("SELECT id, key, version, content_hash FROM deployment "
                   "WHERE key = :key AND status = :active "
                   "ORDER BY version DESC LIMIT 1", {"key": key, "active": DeploymentStatus.ACTIVE})
    if row is None:
        raise NotFound(f"There is no active version of process '{key}'.", code="definition_not_found")
    return DeploymentRef(*row)


# -- instances --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class InstanceRow:
    """A ``process_instance`` row without its state, with its deployment's version and content hash."""

    id: int
    deployment_id: int
    process_key: str
    business_key: str | None
    status: str
    status_reason: str | None
    initiator: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    serializer_version: str
    lock_version: int
    version: int
    content_hash: str


_INSTANCE = ("SELECT i.id, i.deployment_id, i.process_key, i.business_key, "
             "i.status, i.status_reason, i.initiator, "
             "i.started_at, i.updated_at, i.ended_at, i.serializer_version, i.lock_version, d.version, "
             "d.content_hash FROM process_instance i JOIN deployment d ON d.id = i.deployment_id "
             "WHERE i.id = :id")


def load_instance(db: DbApi, instance_id: int, *, lock: bool = False) -> InstanceRow:
    """The row (locked on PostgreSQL with ``lock``; SQLite's writer holds the database). Raises NotFound."""
    found = db.first(_INSTANCE + (" FOR UPDATE OF i" if lock and db.is_postgres else ""), {"id": instance_id})
    if found is None:
        raise NotFound(f"There is no process instance {instance_id}.", code="instance_not_found")
    row = InstanceRow(*found)
    row.started_at, row.updated_at = db.read_time(row.started_at), db.read_time(row.updated_at)  # type: ignore[assignment]
    row.ended_at = db.read_time(row.ended_at)
    return row


def instance_state(db: DbApi, instance_id: int) -> str:
    """The serialized workflow (read only when the live cache misses)."""
    found = db.first("SELECT state FROM process_instance WHERE id = :id", {"id": instance_id})
    if found is None:
        raise NotFound(f"There is no process instance {instance_id}.", code="instance_not_found")
    return found[0]  # type: ignore[no-any-return]


def insert_instance(db: DbApi, deployment: DeploymentRef, business_key: str | None,
                    status: str, initiator: str,
                    now: datetime, serializer_version: str) -> InstanceRow:
    found = db.first(
        "INSERT INTO process_instance (deployment_id, process_key, business_key, status, initiator, "
        "started_at, updated_at, serializer_version, state, lock_version) "
        "VALUES (:deployment_id, :process_key, :business_key, "
        ":status, :initiator, :now, :now, :serializer_version, '{}', 1) RETURNING id",
        {"deployment_id": deployment.id, "process_key": deployment.key, "business_key": business_key,
         "status": status, "initiator": initiator, "now": db.time(now),
         "serializer_version": serializer_version})
    assert found is not None
    return InstanceRow(found[0], deployment.id, deployment.key, business_key, status, None,
                       initiator, now, now,
                       None, serializer_version, 1, deployment.version, deployment.content_hash)


def update_instance(db: DbApi, row: InstanceRow, state: str, key: AuditKey) -> None:
    """Write the row's status, times and the new state, sealed with its row MAC, advancing ``lock_version``
    (optimistic lock: a row changed by someone else since it was read raises Conflict and the unit of work
    rolls back)."""
    cursor = db.execute(
        "UPDATE process_instance SET status = :status, updated_at = :updated_at, ended_at = :ended_at, "
        "serializer_version = :serializer_version, state = :state, lock_version = :next, row_mac = :mac "
        "WHERE id = :id AND lock_version = :lock_version",
        {"status": row.status, "updated_at": db.time(row.updated_at), "ended_at": db.time(row.ended_at),
         "serializer_version": row.serializer_version, "state": state, "next": row.lock_version + 1,
         "mac": key.instance_mac(row, state), "id": row.id,
         "lock_version": row.lock_version})
    if cursor.rowcount != 1:
        raise Conflict(f"Process instance {row.id} was changed by someone else meanwhile; try again.",
                       code="instance_changed")
    row.lock_version += 1


def insert_history(db: DbApi, instance_id: int, recorded_at: datetime, tasks: str, key: AuditKey) -> None:
    """Keep the finished tasks a step removed from the live tree (``engine.spiff.state.prune_history``)."""
    values = {"instance_id": instance_id, "recorded_at": recorded_at}
    db.execute("INSERT INTO task_history (instance_id, recorded_at, tasks, row_mac) "
               "VALUES (:instance_id, :recorded_at, :tasks, :mac)",
               {"instance_id": instance_id, "recorded_at": db.time(recorded_at), "tasks": tasks,
                "mac": key.history_mac(values, tasks)})


def task_history(db: DbApi, instance_id: int) -> list[str]:
    """The instance's removed tasks, oldest first, as JSON texts (see ``insert_history``)."""
    return [row[0] for row in db.execute("SELECT tasks FROM task_history WHERE instance_id = :id ORDER BY id",
                                         {"id": instance_id})]


# -- human tasks ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TaskRow:
    """A ``human_task`` row (the inbox index)."""

    id: int
    instance_id: int
    task_guid: str
    element_id: str
    name: str
    lane: str | None
    candidate_roles: list[Any]
    assignee: str | None
    form_id: str | None
    instructions: str | None
    signature_meaning: str | None
    signature_distinct_from: str | None
    due_at: datetime | None
    state: str
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    data: dict[str, Any] | None


TASK_COLUMNS = tuple(f.name for f in fields(TaskRow))
_TASK_SELECT = f"SELECT {', '.join('t.' + c for c in TASK_COLUMNS)} FROM human_task t"


def _task(db: DbApi, values: tuple[Any, ...]) -> TaskRow:
    task = TaskRow(*values[:len(TASK_COLUMNS)])
    task.candidate_roles = db.read_json(task.candidate_roles) or []
    task.data = db.read_json(task.data)
    task.due_at, task.created_at = db.read_time(task.due_at), db.read_time(task.created_at)  # type: ignore[assignment]
    task.completed_at = db.read_time(task.completed_at)
    return task


def load_task(db: DbApi, task_id: int, *, lock: bool = False) -> TaskRow:
    """Raises NotFound."""
    found = db.first(_TASK_SELECT + " WHERE t.id = :id" + (" FOR UPDATE" if lock and db.is_postgres else ""),
                     {"id": task_id})
    if found is None:
        raise NotFound(f"There is no task {task_id}.", code="task_not_found")
    return _task(db, found)


def instance_of_task(db: DbApi, task_id: int) -> int:
    """Raises NotFound."""
    found = db.first("SELECT instance_id FROM human_task WHERE id = :id", {"id": task_id})
    if found is None:
        raise NotFound(f"There is no task {task_id}.", code="task_not_found")
    return found[0]  # type: ignore[no-any-return]


_NEW_TASK_COLUMNS = (*TASK_COLUMNS[1:], "row_mac")  # all but id
_INSERT_TASK = (f"INSERT INTO human_task ({', '.join(_NEW_TASK_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in _NEW_TASK_COLUMNS)}) RETURNING id")


def insert_task(db: DbApi, values: dict[str, Any], key: AuditKey) -> int:
    """A new open task from column values (``id`` excluded, missing ones NULL), sealed; returns its id."""
    params = {**values, "row_mac": key.task_mac({name: values.get(name) for name in TASK_SEALED}),
              "candidate_roles": db.json(values["candidate_roles"]),
              "data": db.json(values.get("data")),
              "due_at": db.time(values.get("due_at")), "created_at": db.time(values["created_at"]),
              "completed_at": db.time(values.get("completed_at"))}
    found = db.first(_INSERT_TASK, {c: params.get(c) for c in _NEW_TASK_COLUMNS})
    assert found is not None
    return found[0]  # type: ignore[no-any-return]


def save_task(db: DbApi, task: TaskRow, key: AuditKey) -> None:
    """Write what a claim, unclaim, completion or cancellation changes, sealed with the row's MAC."""
    db.execute("UPDATE human_task SET state = :state, assignee = :assignee, completed_at = :completed_at, "
               "completed_by = :completed_by, data = :data, row_mac = :mac WHERE id = :id",
               {"state": task.state, "assignee": task.assignee, "completed_at": db.time(task.completed_at),
                "completed_by": task.completed_by, "data": db.json(task.data), "mac": key.task_mac(task),
                "id": task.id})


def cancel_tasks(db: DbApi, instance_id: int, guids: list[str], key: AuditKey) -> list[tuple[int, str]]:
    """Cancel the open or claimed tasks of ``guids``; returns (id, name) of each one cancelled."""
    where = (f"t.instance_id = :instance_id AND t.task_guid IN ({placeholders('guid', len(guids))}) "
             f"AND t.state IN (:open, :claimed)")
    params = {"instance_id": instance_id, "open": TaskState.OPEN, "claimed": TaskState.CLAIMED,
              **numbered("guid", guids)}
    cancelled = [_task(db, row) for row in db.all(f"{_TASK_SELECT} WHERE {where} ORDER BY t.id", params)]
    for task in cancelled:  # each row its own MAC
        task.state = TaskState.CANCELLED
        save_task(db, task, key)
    return [(task.id, task.name) for task in cancelled]


# -- the inbox ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilter:
    """Which tasks a principal sees: those the ``roles`` may work on (None: every task, an admin's view)."""

    states: tuple[str, ...]
    roles: tuple[str, ...] | None
    me: str
    mine: bool = False
    instance_id: int | None = None
    process: str | None = None
    business_key: str | None = None  # a part of it


@lru_cache(maxsize=256)
def _inbox_sql(states: int, roles: int | None, mine: bool, by_instance: bool, by_process: bool,
               by_business_key: bool) -> str:
    where = [f"t.state IN ({placeholders('state', states)})"]
    if roles is not None:
        # the roles that may work on a task (its lane's or its candidateRoles'), kept as JSON text, matched
        # as '"role"'; a task that names none is everyone's (engine.authority.may_work_on)
        held = [f"CAST(t.candidate_roles AS TEXT) LIKE :role{n} ESCAPE '/'" for n in range(roles)]
        anyone = "CAST(t.candidate_roles AS TEXT) = '[]'"
        where.append(f"({' OR '.join([*held, anyone])})")
    if mine:
        where.append("t.assignee = :me")
    if by_instance:
        where.append("t.instance_id = :instance_id")
    if by_process:
        where.append("i.process_key = :process")
    if by_business_key:
        where.append("i.business_key LIKE :business_key ESCAPE '/'")
    return (f"{_TASK_SELECT.replace(' FROM ', ', i.process_key, d.name, i.business_key FROM ', 1)} "
            "JOIN process_instance i ON i.id = t.instance_id JOIN deployment d ON d.id = i.deployment_id "
            f"WHERE {' AND '.join(where)} "
            "ORDER BY CASE WHEN t.assignee = :me THEN 0 ELSE 1 END, t.due_at IS NULL, t.due_at, t.id "
            "LIMIT :limit")


def inbox(db: DbApi, which: InboxFilter, limit: int = 500) -> list[tuple[TaskRow, str, str, str | None]]:
    """(task, process key, process name, business key) of the tasks ``which`` selects: the principal's own
    first, then by due time (tasks without one last), then oldest first."""
    sql = _inbox_sql(len(which.states), None if which.roles is None else len(which.roles), which.mine,
                     which.instance_id is not None, which.process is not None, bool(which.business_key))
    held = [f'%"{_like_escaped(role)}"%' for role in which.roles or ()]
    params = {**numbered("state", which.states), **numbered("role", held), "me": which.me,
              "instance_id": which.instance_id, "process": which.process, "limit": limit,
              "business_key": "%" + _like_escaped(which.business_key or "") + "%"}
    width = len(TASK_COLUMNS)
    return [(_task(db, row), row[width], row[width + 1], row[width + 2]) for row in db.all(sql, params)]


def _like_escaped(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


# -- jobs -------------------------------------------------------------------------------------------------
_JOB_COLUMNS = ("kind", "instance_id", "deployment_id", "task_guid", "element_id", "operation",
                "payload", "state",
                "due_at", "attempts", "max_attempts", "created_at", "updated_at")
_INSERT_JOB = (f"INSERT INTO job ({', '.join(_JOB_COLUMNS)}) "
               f"VALUES ({', '.join(':' + c for c in _JOB_COLUMNS)})")


def insert_jobs(db: DbApi, jobs: list[dict[str, Any]]) -> None:
    """New jobs from column values (``payload`` a dict, times aware datetimes); the workers wake when the
    transaction commits (``announce_jobs``)."""
    db.many(_INSERT_JOB, [{**job, "payload": db.json(job["payload"]), "due_at": db.time(job["due_at"]),
                           "created_at": db.time(job["created_at"]), "updated_at": db.time(job["updated_at"])}
                          for job in jobs])
    announce_jobs(db)


def announce_jobs(db: DbApi) -> None:
    """Wake the job workers when this transaction commits: those of this process through the database's
    ``jobs_due`` signal (``Database.transaction``), those of other processes on PostgreSQL through NOTIFY,
    which the server delivers at commit (and drops at rollback)."""
    if not db.jobs_announced:
        db.jobs_announced = True
        if db.is_postgres:
            db.execute(f"NOTIFY {JOBS_CHANNEL}")


def cancel_jobs(db: DbApi, instance_id: int, kind: str, guids: list[str], now: datetime) -> None:
    """Cancel the pending jobs of ``kind`` for these task guids."""
    db.execute(f"UPDATE job SET state = :cancelled, updated_at = :now WHERE instance_id = :instance_id "
               f"AND kind = :kind AND task_guid IN ({placeholders('guid', len(guids))}) AND state = :pending",
               {"cancelled": JobState.CANCELLED, "now": db.time(now), "instance_id": instance_id,
                "kind": kind,
                "pending": JobState.PENDING, **numbered("guid", guids)})


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds under its lease."""

    id: int
    kind: str
    instance_id: int | None
    task_guid: str | None
    element_id: str | None
    operation: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


# Due: pending, or running with an expired lease (its worker died).
_DUE = ("FROM job WHERE (state = :pending OR (state = :running AND lock_expires_at < :now)) "
        "AND due_at <= :now "
        "ORDER BY due_at, id LIMIT :limit")


def _due_params(db: DbApi, now: datetime, limit: int) -> dict[str, Any]:
    return {"pending": JobState.PENDING, "running": JobState.RUNNING, "now": db.time(now), "limit": limit}


def any_due(db: DbApi, now: datetime) -> bool:
    """Whether a job is due (a read: an idle worker's poll takes no write lock)."""
    return db.first("SELECT id " + _DUE, _due_params(db, now, 1)) is not None


def next_due(db: DbApi) -> datetime | None:
    """The earliest moment a job falls due: a pending job's due time, or a running job's lease end (its
    worker may have died); ``None`` when there is no such job."""
    row = db.first("SELECT MIN(CASE WHEN state = :pending THEN due_at ELSE lock_expires_at END) FROM job "
                   "WHERE state = :pending OR state = :running",
                   {"pending": JobState.PENDING, "running": JobState.RUNNING})
    return db.read_time(row[0]) if row and row[0] is not None else None


def claim_due(db: DbApi, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[ClaimedJob]:
    """Lock up to ``limit`` due jobs for ``owner`` (skipping those another worker is claiming on
    PostgreSQL)."""
    found = db.all("SELECT id, kind, instance_id, task_guid, element_id, operation, payload, attempts, "
                   "max_attempts "
                   + _DUE + (" FOR UPDATE SKIP LOCKED" if db.is_postgres else ""),
                   _due_params(db, now, limit))
    if not found:
        return []
    db.execute(f"UPDATE job SET state = :running, locked_by = :owner, lock_expires_at = :until, "
               f"attempts = attempts + 1, updated_at = :now WHERE id IN ({placeholders('id', len(found))})",
               {"running": JobState.RUNNING, "owner": owner, "until": db.time(lease_until),
                "now": db.time(now),
                **numbered("id", [row[0] for row in found])})
    return [ClaimedJob(id=row[0], kind=row[1], instance_id=row[2], task_guid=row[3], element_id=row[4],
                       operation=row[5], payload=db.read_json(row[6]), attempts=row[7] + 1,
                       max_attempts=row[8])
            for row in found]


def finish_job(db: DbApi, job_id: int, owner: str, now: datetime) -> bool:
    """Mark the job done if ``owner`` still holds it; False when its lease ran out and another worker took it
    (that worker finishes it; the caller changes nothing)."""
    cursor = db.execute("UPDATE job SET state = :done, locked_by = NULL, lock_expires_at = NULL, "
                        "updated_at = :now "
                        "WHERE id = :id AND state = :running AND locked_by = :owner",
                        {"done": JobState.DONE, "now": db.time(now), "id": job_id,
                         "running": JobState.RUNNING,
                         "owner": owner})
    return cursor.rowcount == 1  # type: ignore[no-any-return]


def job_due(db: DbApi, instance_id: int, now: datetime) -> bool:
    """Whether a pending job of the instance is due (engine work now: the instance is ``running``)."""
    found = db.first("SELECT 1 FROM job WHERE instance_id = :instance_id AND state = :pending "
                     "AND due_at <= :now",
                     {"instance_id": instance_id, "pending": JobState.PENDING, "now": db.time(now)})
    return found is not None
