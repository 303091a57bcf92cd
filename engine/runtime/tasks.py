"""The human-task inbox: list, claim, unclaim, complete. Authority: only holders of the lane's role."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import BindParameter, Select, bindparam, or_, select
from sqlalchemy.orm import Session

from engine import audit, forms
from engine.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from engine.identity import Principal
from engine.states import TaskState, check_transition
from engine.store.models import HumanTask

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime

ADMIN_ROLE = "admin"
# Built once: completing a task runs these on every step.
_TASK = select(HumanTask).where(HumanTask.id == bindparam("id"))
_TASK_LOCKED = _TASK.with_for_update()
_INSTANCE_OF_TASK = select(HumanTask.instance_id).where(HumanTask.id == bindparam("id"))


def may_work_on(principal: Principal, task: HumanTask) -> bool:
    return not task.candidate_roles or bool(principal.roles & set(task.candidate_roles))


def check_authority(principal: Principal, task: HumanTask, action: str) -> None:
    if not may_work_on(principal, task):
        raise PermissionDenied(f"Only holders of the role {', '.join(task.candidate_roles)} may {action} the "
                               f"task '{task.name}'.", code="role_required")


def get_task(session: Session, task_id: int, *, lock: bool = False) -> HumanTask:
    task = session.scalar(_TASK_LOCKED if lock else _TASK, {"id": task_id})
    if task is None:
        raise NotFound(f"There is no task {task_id}.", code="task_not_found")
    return task


def inbox_query(principal: Principal, *, state: str | None = None, mine: bool = False, role: str | None = None,
                instance_id: int | None = None) -> Select[HumanTask]:
    """Open and claimed tasks of the principal's lanes (all lanes for an admin), the principal's own first."""
    every_lane = ADMIN_ROLE in principal.roles and not mine and not role
    query = _inbox_shape(every_lane, mine, instance_id is not None)
    return query.params(states=[state] if state else [TaskState.OPEN, TaskState.CLAIMED],
                        lanes=[role] if role else sorted(principal.roles), me=principal.username,
                        instance_id=instance_id)


@lru_cache(maxsize=None)  # eight shapes; building a query costs a hundred times more than binding its values
def _inbox_shape(every_lane: bool, mine: bool, by_instance: bool) -> Select[HumanTask]:
    me: BindParameter[Any] = bindparam("me")
    query = select(HumanTask).where(HumanTask.state.in_(bindparam("states", expanding=True)))
    if not every_lane:
        query = query.where(or_(HumanTask.lane.in_(bindparam("lanes", expanding=True)), HumanTask.lane.is_(None)))
    if mine:
        query = query.where(HumanTask.assignee == me)
    if by_instance:
        query = query.where(HumanTask.instance_id == bindparam("instance_id"))
    return query.order_by((HumanTask.assignee == me).desc(), HumanTask.due_at, HumanTask.id)


def claim(runtime: InstanceRuntime, principal: Principal, task_id: int) -> HumanTask:
    now = runtime.clock.now()
    with runtime.db.unit_of_work() as session:
        task = get_task(session, task_id, lock=True)
        check_authority(principal, task, "claim")
        if task.state == TaskState.CLAIMED and task.assignee == principal.username:
            return task  # claiming twice is harmless
        if task.state == TaskState.CLAIMED:
            raise Conflict(f"The task is claimed by {task.assignee}.", code="task_claimed_by_other",
                           assignee=task.assignee)
        check_transition(task.state, TaskState.CLAIMED, "task")
        task.state, task.assignee = TaskState.CLAIMED, principal.username
        audit.record(session, principal.actor, "task.claimed", "task", task.id, task.name, at=now,
                     before={"state": TaskState.OPEN, "assignee": None},
                     after={"state": TaskState.CLAIMED, "assignee": principal.username})
    return task


def unclaim(runtime: InstanceRuntime, principal: Principal, task_id: int) -> HumanTask:
    now = runtime.clock.now()
    with runtime.db.unit_of_work() as session:
        task = get_task(session, task_id, lock=True)
        if task.state != TaskState.CLAIMED:
            raise Conflict("The task is not claimed.", code=f"task_{task.state}")
        if task.assignee != principal.username and ADMIN_ROLE not in principal.roles:
            raise Conflict(f"The task is claimed by {task.assignee}; only they or an admin can release it.",
                           code="task_claimed_by_other", assignee=task.assignee)
        before = task.assignee
        task.state, task.assignee = TaskState.OPEN, None
        audit.record(session, principal.actor, "task.unclaimed", "task", task.id, task.name, at=now,
                     before={"state": TaskState.CLAIMED, "assignee": before},
                     after={"state": TaskState.OPEN, "assignee": None})
    return task


def complete(runtime: InstanceRuntime, principal: Principal, task_id: int, data: dict[str, Any] | None,
             sign: Any = None, guard_context: dict[str, Any] | None = None) -> HumanTask:
    """Complete a task with data; ``sign(session, task, live, data)`` checks and stores a signature.

    The task's ``guard`` properties (``guard`` or ``guard.<name>``, each with ``guardMessage[.<name>]``) are
    sandboxed expressions over the task's data, the submitted data and ``guard_context`` (e.g. the
    ``signature_meaning`` chosen); one that is false refuses the completion (ValidationFailed
    ``guard_failed``) before anything is signed or stored.

    Raises Conflict when the task is no longer open or is claimed by someone else (nothing changes),
    PermissionDenied without the lane's role, ValidationFailed when the data does not fit the form.
    """
    data = dict(data or {})

    def instance_of_task(session: Session) -> int:
        instance_id = session.scalar(_INSTANCE_OF_TASK, {"id": task_id})
        if instance_id is None:
            raise NotFound(f"There is no task {task_id}.", code="task_not_found")
        return instance_id

    # Lock order everywhere: the instance first, then its task rows.
    with runtime.step(instance_of_task, principal.actor) as (session, live):
        task = get_task(session, task_id, lock=True)
        if task.state not in (TaskState.OPEN, TaskState.CLAIMED):
            raise Conflict(f"The task is {task.state}; it cannot be completed again.", code="task_not_open",
                           state=task.state)
        if task.state == TaskState.CLAIMED and task.assignee != principal.username:
            raise Conflict(f"The task is claimed by {task.assignee}.", code="task_claimed_by_other",
                           assignee=task.assignee)
        check_authority(principal, task, "complete")
        if task.form_id:
            form = live.parsed.forms.get(task.form_id)
            if form is None:
                raise NotFound(f"The form '{task.form_id}' is not part of the deployment.", code="form_not_found")
            data = forms.validate(form, data)
        spiff_task = live.workflow.get_task_from_id(UUID(task.task_guid))
        if spiff_task is None or spiff_task.state != SpiffState.READY:
            raise Conflict("The task is no longer waiting in the process.", code="task_not_open")
        check_guards(runtime, spiff_task, data, guard_context or {})
        if sign is not None:
            sign(session, task, live, data)
        elif task.signature_meaning:
            raise ValidationFailed(f"The task '{task.name}' must be signed ({task.signature_meaning}).",
                                   errors={"signature": "required"}, code="signature_required")
        now = runtime.clock.now()
        spiff_task.set_data(**data)
        spiff_task.run()
        live.handled.add(task.task_guid)
        before_state = task.state
        task.state, task.completed_at, task.completed_by, task.data = (TaskState.COMPLETED, now,
                                                                      principal.username, audit.normalized(data))
        task.assignee = task.assignee or principal.username
        audit.record(session, principal.actor, "task.completed", "task", task.id,
                     f"{task.name} ({runtime.label(live.row)})", at=now, before={"state": before_state},
                     after={"state": TaskState.COMPLETED, "data": data})
    return task



def check_guards(runtime: InstanceRuntime, spiff_task: Any, data: dict[str, Any], context: dict[str, Any]) -> None:
    from engine.definitions.properties import properties_of

    props = properties_of(spiff_task.task_spec)
    for name in sorted(p for p in props if p == "guard" or p.startswith("guard.")):
        suffix = name[len("guard"):]
        try:
            # What is submitted now wins over what the task held before (e.g. a decision made again).
            ok = runtime.script_engine.environment.evaluate(props[name], {**spiff_task.data, **context, **data})
        except Exception as exc:  # a guard that cannot be evaluated refuses, naming why
            raise ValidationFailed(f"{props.get('guardMessage' + suffix) or 'The entry is refused'} "
                                   f"({exc}).", errors={"guard": str(exc)}, code="guard_failed") from None
        if not ok:
            message = props.get("guardMessage" + suffix) or f"The entry is refused: {props[name]}."
            raise ValidationFailed(message, errors={"guard": message}, code="guard_failed")
