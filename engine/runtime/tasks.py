"""The human-task inbox: list, claim, unclaim, complete. Authority: only holders of the lane's role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from engine import access, audit, authority, forms, qualifications
from engine.errors import Conflict, NotFound, PermissionDenied, UndeclaredField, ValidationFailed
from engine.identity import Principal
from engine.operations import OperationRegistry
from engine.runtime import entry_checks, record_locks, rows
from engine.runtime.rows import TaskRow
from engine.spiff.tasks import is_ready
from engine.states import TaskState, check_transition
from engine.store.dbapi import DbApi
from engine.store.models import HumanTask

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from engine.request_context import RequestContext
    from engine.runtime.instances import InstanceRuntime

ADMIN_ROLE = "admin"
Task = TaskRow | HumanTask  # the hot path reads TaskRow; other queries the ORM's HumanTask


# Authority is decided in one place (engine.authority); these names stay for the callers that use them.
may_work_on = authority.may_work_on
check_authority = authority.check_task


def get_task(db: DbApi, task_id: int, *, lock: bool = False) -> TaskRow:
    """Raises NotFound."""
    return rows.load_task(db, task_id, lock=lock)


def check_may_see(session: Session, principal: Principal, task: Task) -> None:
    """An open task is for its lane's role; a done one's data is part of its instance's record, for those
    who may read that (``engine.access``). Raises PermissionDenied."""
    if task.state in (TaskState.OPEN, TaskState.CLAIMED):
        check_authority(principal, task, "see")
    else:
        access.check_instances(session, principal, [task.instance_id], "this task")


def inbox_filter(principal: Principal, *, state: str | None = None, mine: bool = False,
                 role: str | None = None, instance_id: int | None = None, process: str | None = None,
                 business_key: str | None = None) -> rows.InboxFilter:
    """Open and claimed tasks (or those in ``state``) the principal's roles may work on (every task for an
    admin). Raises ``not_permitted`` for ``role``, a role the principal does not hold (an admin excepted)."""
    if role and role not in principal.roles and ADMIN_ROLE not in principal.roles:
        raise PermissionDenied(f"Only holders of the role {role} (and admins) see its tasks.",
                               code="not_permitted")
    every_task = ADMIN_ROLE in principal.roles and not mine and not role
    return rows.InboxFilter(states=(state,) if state else (TaskState.OPEN, TaskState.CLAIMED),
                            roles=None if every_task else (role,) if role else tuple(sorted(principal.roles)),
                            me=principal.username, mine=mine, instance_id=instance_id, process=process,
                            business_key=business_key)


def inbox(db: DbApi, principal: Principal, limit: int = 500, **filters: Any) -> list[TaskRow]:
    """The principal's tasks, their own first, then by due time (see ``inbox_filter`` for ``filters``)."""
    return [task for task, *_ in rows.inbox(db, inbox_filter(principal, **filters), limit)]


def person(context: RequestContext) -> Principal:
    """The signed-in principal of a request on a task (the engine itself does not work on human tasks)."""
    if context.principal is None:
        raise PermissionDenied("Only a signed-in user works on human tasks.", code="not_permitted")
    return context.principal


def claim(runtime: InstanceRuntime, context: RequestContext, task_id: int) -> TaskRow:
    """Claim for ``context``'s principal, audited at the request's time."""
    principal, now = person(context), context.at
    with runtime.db.transaction(context.correlation_id) as uow:
        task = get_task(uow.db, task_id, lock=True)
        check_authority(principal, task, "claim")
        if task.state == TaskState.CLAIMED and task.assignee == principal.username:
            return task  # claiming twice is harmless
        if task.state == TaskState.CLAIMED:
            raise Conflict(f"The task is claimed by {task.assignee}.", code="task_claimed_by_other",
                           assignee=task.assignee)
        check_transition(task.state, TaskState.CLAIMED, "task")
        qualifications.check(uow.session, principal.username, required_qualification(runtime, uow, task), now,
                             action="claim", task_id=task.id, task_name=task.name)
        task.state, task.assignee = TaskState.CLAIMED, principal.username
        rows.save_task(uow.db, task, uow.audit_key)
        audit.record(uow, principal.actor, "task.claimed", "task", task.id, task.name, at=now,
                     before={"state": TaskState.OPEN, "assignee": None},
                     after={"state": TaskState.CLAIMED, "assignee": principal.username})
    return task


def unclaim(runtime: InstanceRuntime, context: RequestContext, task_id: int) -> TaskRow:
    principal, now = person(context), context.at
    with runtime.db.transaction(context.correlation_id) as uow:
        task = get_task(uow.db, task_id, lock=True)
        if task.state != TaskState.CLAIMED:
            raise Conflict("The task is not claimed.", code=f"task_{task.state}")
        if task.assignee != principal.username and ADMIN_ROLE not in principal.roles:
            raise Conflict(f"The task is claimed by {task.assignee}; only they or an admin can release it.",
                           code="task_claimed_by_other", assignee=task.assignee)
        before = task.assignee
        task.state, task.assignee = TaskState.OPEN, None
        rows.save_task(uow.db, task, uow.audit_key)
        audit.record(uow, principal.actor, "task.unclaimed", "task", task.id, task.name, at=now,
                     before={"state": TaskState.CLAIMED, "assignee": before},
                     after={"state": TaskState.OPEN, "assignee": None})
    return task


def complete(runtime: InstanceRuntime, context: RequestContext, task_id: int, data: dict[str, Any] | None,
             sign: Any = None, guard_context: dict[str, Any] | None = None,
             registry: OperationRegistry | None = None) -> TaskRow:
    """Complete a task with data for ``context``'s principal; ``sign(uow, task, live, data)`` checks and
    stores a signature. The completion and what the step records with it (tasks created, record locks, the
    instance's end) are audited at the request's time ``context.at``.

    The task's ``guard`` properties (``guard`` or ``guard.<name>``, each with ``guardMessage[.<name>]``) are
    sandboxed expressions over the task's data, the submitted data and ``guard_context`` (e.g. the
    ``signature_meaning`` chosen); one that is false refuses the completion (ValidationFailed
    ``guard_failed``) before anything is signed or stored. Then the task's ``entry.check`` (an operation of
    ``registry``) runs in this transaction, still before the signature (``engine.runtime.entry_checks``:
    raises ``entry_checks.Refused``).

    Raises Conflict when the task is no longer open or is claimed by someone else (nothing changes),
    PermissionDenied without the lane's role, ValidationFailed when the data does not fit the form.
    """
    data = dict(data or {})
    principal, now = person(context), context.at
    read: list[TaskRow] = []

    def instance_of(uow: Any) -> int:
        if uow.db.is_postgres:  # lock order everywhere: the instance first, then its task rows
            return rows.instance_of_task(uow.db, task_id)
        # SQLite: BEGIN IMMEDIATE holds the write lock already, the row read now is the row at the commit
        read[:] = [get_task(uow.db, task_id)]
        return read[0].instance_id

    with runtime.step(instance_of, principal.actor, at=now,
                      correlation_id=context.correlation_id) as (uow, live):
        task = read[0] if read else get_task(uow.db, task_id, lock=True)
        if task.state not in (TaskState.OPEN, TaskState.CLAIMED):
            raise Conflict(f"The task is {task.state}; it cannot be completed again.", code="task_not_open",
                           state=task.state)
        if task.state == TaskState.CLAIMED and task.assignee != principal.username:
            raise Conflict(f"The task is claimed by {task.assignee}.", code="task_claimed_by_other",
                           assignee=task.assignee)
        check_authority(principal, task, "complete")
        spiff_task = live.workflow.get_task_from_id(UUID(task.task_guid))
        skill = _evaluated(runtime, spiff_task) if spiff_task is not None else None
        if skill:  # before any entry is looked at; the ORM session only for a task that needs a skill
            qualifications.check(uow.session, principal.username, skill, now, action="complete",
                                 task_id=task.id, task_name=task.name)
        form = live.parsed.forms.get(task.form_id) if task.form_id else None
        if task.form_id and form is None:
            raise NotFound(f"The form '{task.form_id}' is not part of the deployment.", code="form_not_found")
        authority.check_task_data(live.parsed, task.form_id, data)  # before the values: unknown keys first
        if form is not None:
            data = forms.validate(form, data)
        refuse_protected(live.parsed.protected_variables, data)
        if spiff_task is None or not is_ready(spiff_task):
            raise Conflict("The task is no longer waiting in the process.", code="task_not_open")
        check_guards(runtime, spiff_task, data, guard_context or {})
        if registry is not None:
            entry_checks.run(registry, uow, live, task, spiff_task, data, principal.actor, now)
        if sign is not None:
            sign(uow, task, live, data)
        elif task.signature_meaning:
            raise ValidationFailed(f"The task '{task.name}' must be signed ({task.signature_meaning}).",
                                   errors={"signature": "required"}, code="signature_required")
        record_locks.on_completion(uow, runtime, live, spiff_task, data, principal.actor, now)
        spiff_task.set_data(**data)
        spiff_task.run()
        live.handled.add(task.task_guid)
        before_state = task.state
        task.state, task.completed_at, task.completed_by, task.data = (
            TaskState.COMPLETED, now, principal.username, audit.normalized(data))
        task.assignee = task.assignee or principal.username
        rows.save_task(uow.db, task, uow.audit_key)
        audit.record(uow, principal.actor, "task.completed", "task", task.id,
                     f"{task.name} ({runtime.label(live.row)})", at=now, before={"state": before_state},
                     after={"state": TaskState.COMPLETED, "data": data})
    return task



def required_qualification(runtime: InstanceRuntime, uow: Any, task: TaskRow) -> Any:
    """The value of the task's ``qualification.required`` property (``engine.qualifications``), None without
    one; the instance's state is read only for a task whose model has the property."""
    from engine.definitions.properties import properties_of

    parsed = runtime.parsed(uow, rows.load_instance(uow.db, task.instance_id).deployment_id)
    specs = [parsed.spec, *parsed.subprocess_specs.values()]
    spec = next((s.task_specs[task.element_id] for s in specs if task.element_id in s.task_specs), None)
    if spec is None or not properties_of(spec).get(qualifications.PROPERTY):
        return None
    spiff_task = runtime.read(uow.session, task.instance_id).workflow.get_task_from_id(UUID(task.task_guid))
    return _evaluated(runtime, spiff_task) if spiff_task is not None else None


def _evaluated(runtime: InstanceRuntime, spiff_task: Any) -> Any:
    from engine.definitions.properties import properties_of

    expression = properties_of(spiff_task.task_spec).get(qualifications.PROPERTY)
    if not expression:
        return None
    try:
        return runtime.script_engine.environment.evaluate(expression, dict(spiff_task.data))
    except Exception as exc:  # a model that cannot say what it needs lets nobody in
        raise PermissionDenied(f"The task's required qualification cannot be read ({exc}).",
                               code="not_permitted") from None


def refuse_protected(protected: frozenset[str], data: dict[str, Any]) -> None:
    """Client data may not set a variable that a four-eyes rule reads (``variable:<name>``): the engine's
    own, written by a script or a service task. Raises ValidationFailed ``undeclared_field``."""
    taken = sorted(protected.intersection(data))
    if taken:
        raise UndeclaredField(f"{', '.join(taken)} cannot be set: the process itself writes "
                              f"{'it' if len(taken) == 1 else 'them'} (four eyes).", fields=taken)


def check_guards(runtime: InstanceRuntime, spiff_task: Any, data: dict[str, Any],
                 context: dict[str, Any]) -> None:
    from engine.definitions.properties import properties_of

    props = properties_of(spiff_task.task_spec)
    for name in sorted(p for p in props if p == "guard" or p.startswith("guard.")):
        suffix = name[len("guard"):]
        try:
            # What is submitted now wins over what the task held before (e.g. a decision made again).
            ok = runtime.script_engine.environment.evaluate(props[name],
                                                            {**spiff_task.data, **context, **data})
        except Exception as exc:  # a guard that cannot be evaluated refuses, naming why
            raise ValidationFailed(f"{props.get('guardMessage' + suffix) or 'The entry is refused'} "
                                   f"({exc}).", errors={"guard": str(exc)}, code="guard_failed") from None
        if not ok:
            message = props.get("guardMessage" + suffix) or f"The entry is refused: {props[name]}."
            raise ValidationFailed(message, errors={"guard": message}, code="guard_failed")
