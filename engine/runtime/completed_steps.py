"""The engine's completed BPMN steps of an instance: the records of the tasks that left its live tree
(``task_history``, oldest first), then the completed tasks still in it (``engine.spiff.history``)."""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.util.task import TaskState

from engine.dmn.task import USED as DECISION_USED
from engine.runtime import rows
from engine.store.dbapi import DbApi


def _step(task_spec: Any, completed_at: float, internal_data: dict[str, Any]) -> dict[str, Any] | None:
    """``completed_at`` as a POSIX timestamp; a business rule task's step names the decision it used
    (``engine.dmn.task``: key, and a shared decision's version)."""
    if not getattr(task_spec, "bpmn_id", None):
        return None  # SpiffWorkflow's own bookkeeping tasks (Root, Start, End)
    return {"element_id": task_spec.bpmn_id, "name": task_spec.bpmn_name or task_spec.bpmn_id,
            "type": task_spec.__class__.__name__, "completed_at": completed_at,
            **({"decision": internal_data[DECISION_USED]} if DECISION_USED in internal_data else {})}


def _recorded(workflow: Any, groups: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """One ``task_history`` row's completed steps in the tree's order: a sub-workflow's steps follow the
    task that ran it when both left in the same step (as ``get_tasks`` walks into sub-workflows)."""
    subs = {group["workflow"]: group for group in groups if group["workflow"] is not None}
    found: list[dict[str, Any] | None] = []

    def walk(group: dict[str, Any]) -> None:
        name = group["spec"]
        spec = workflow.spec if name == workflow.spec.name else workflow.subprocess_specs.get(name)
        for task_id, task in group["tasks"].items():
            if task["state"] == TaskState.COMPLETED:
                task_spec = spec.task_specs.get(task["task_spec"]) if spec is not None else None
                found.append(_step(task_spec, task["last_state_change"], task["internal_data"]))
            if task_id in subs:
                walk(subs.pop(task_id))

    for group in groups:
        if group["workflow"] is None:
            walk(group)
    while subs:  # sub-workflows whose task left in another step, or is still in the live tree
        walk(subs.pop(next(iter(subs))))
    return found


def completed_steps(db: DbApi, instance_id: int, workflow: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any] | None] = []
    for text in rows.task_history(db, instance_id):
        found.extend(_recorded(workflow, json.loads(text)))
    found.extend(_step(task.task_spec, task.last_state_change, task.internal_data)
                 for task in workflow.get_tasks(state=TaskState.COMPLETED))
    return [step for step in found if step is not None]
