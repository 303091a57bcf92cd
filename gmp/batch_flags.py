"""Facts that the models flag: a completed user task whose model names an ``exception.fact`` is evidence of
that fact in the batch record (review by exception), so which decisions count — an override signed at order
release, a held batch resumed, a deviation closed while its CAPA is still
open — is a model property, not Python:

- ``exception.fact``: the fact's name (e.g. ``overrides``, ``open_capas``); ``release_exceptions.dmn`` reads
  how many entries it has (``summary['facts'][name]``) and decides the kind and severity;
- ``exception.when`` (optional): a sandboxed expression over the task's submitted fields (and ``task_data``,
  their dict, for a field that may be absent); the task is evidence only when it is true
  (``hold_decision == 'resume'``);
- ``exception.text`` (optional): a sandboxed expression giving the entry's text (else the task's name).

The tasks looked at are those of the batch's own instances and of its order's ``order_release``.
"""

from __future__ import annotations

from datetime import timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.definitions.properties import properties_of
from engine.states import TaskState
from engine.store.models import HumanTask, ProcessInstance

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime

FACT, WHEN, TEXT = "exception.fact", "exception.when", "exception.text"
ORDER_PROCESS = "order_release"  # the order's release: an override signed there led to this batch


def _evaluate(runtime: InstanceRuntime, expression: str, data: dict[str, Any]) -> Any:
    try:
        return runtime.script_engine.environment.evaluate(expression, {**data, "task_data": dict(data)})
    except Exception as exc:  # the model's expression fails on this task's data: shown, never dropped
        return f"({expression} failed: {exc})"


def order_instance_ids(session: Session, order_id: Any) -> list[int]:
    if not order_id:
        return []
    return list(session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.process_key == ORDER_PROCESS, ProcessInstance.business_key == str(order_id))))


def flagged(session: Session, runtime: InstanceRuntime, instance_ids: list[int],
            names: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """fact name → its entries (``step`` when the task ran in an SOP step, ``by``, ``at``, ``text``)."""
    found: dict[str, list[dict[str, Any]]] = {}
    rows = session.execute(select(HumanTask, ProcessInstance).join(
        ProcessInstance, ProcessInstance.id == HumanTask.instance_id).where(
        HumanTask.instance_id.in_(instance_ids), HumanTask.state == TaskState.COMPLETED)
        .order_by(HumanTask.completed_at, HumanTask.id))
    for task, instance in rows:
        spec = runtime.specs.get_by_id(session, instance.deployment_id).spec.task_specs.get(task.element_id)
        props = properties_of(spec)
        if not props.get(FACT):
            continue
        data = dict(task.data or {})
        if props.get(WHEN) and _evaluate(runtime, props[WHEN], data) is not True:
            continue
        text = str(_evaluate(runtime, props[TEXT], data)) if props.get(TEXT) else task.name
        step = (int(str(instance.business_key).rsplit("/", 1)[1])
                if instance.process_key == "sop_step" and "/" in str(instance.business_key) else None)
        by = names.get(task.completed_by or "") or task.completed_by
        found.setdefault(props[FACT], []).append({
            "step": step, "task": task.element_id, "process": instance.process_key, "by": task.completed_by,
            "at": task.completed_at.astimezone(timezone.utc).isoformat() if task.completed_at else None,
            "text": f"{text} ({task.name}, {by})"})
    return found
