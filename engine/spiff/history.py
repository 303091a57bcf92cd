"""Finished history leaves the live task tree, so a step's cost does not grow with the instance's past.

SpiffWorkflow never drops a completed task: every loop iteration deepens the tree, every finished call
activity keeps its sub-workflow, and every step walks, serializes and seals all of it (a loop step at
iteration 1,000 cost 15-33x one at iteration 10). ``prune`` removes, after each step and before the state
is written, every finished task nothing can read any more, and returns them in the serializer's own task
format so the caller keeps them as records (``task_history``).

What stays (everything SpiffWorkflow 3.2.0 reads of a workflow's tasks, checked in its source):
- every unfinished task and everything below it (a multi-instance task counts its finished children);
- the parent of each of those (a task inherits its parent's data; joins read their inputs' parents);
- a cancelled task of a parallel or inclusive join whose round has not fired yet, with its parent (the join
  counts it as an input that arrived);
- the root, and ``last_task`` (the instance's current variables are its data).
Finished tasks between them are spliced out: a kept task's parent becomes its nearest kept ancestor, so
ancestry among kept tasks (``is_descendant_of``, ``find_ancestor`` of a boundary event's split) holds.
A sub-workflow whose task left its parent's tree leaves with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.task import TaskState

PRUNABLE = TaskState.COMPLETED | TaskState.CANCELLED  # an ERROR task stays: a retry may run it again


def _open_join_round(tasks: dict[UUID, Any]) -> set[UUID]:
    """Cancelled join tasks cancelled after their join last fired: the join still counts them."""
    fired: dict[str, float] = {}
    cancelled = []
    for task in tasks.values():
        if isinstance(task.task_spec, UnstructuredJoin):
            if task.state == TaskState.COMPLETED:
                name = task.task_spec.name
                fired[name] = max(fired.get(name, task.last_state_change), task.last_state_change)
            elif task.state == TaskState.CANCELLED:
                cancelled.append(task)
    return {task.id for task in cancelled
            if task.last_state_change > fired.get(task.task_spec.name, float("-inf"))}


def _kept(workflow: Any) -> set[UUID]:
    tasks, root = workflow.tasks, workflow.task_tree
    protected = _open_join_round(tasks)
    protected |= {key for key, task in tasks.items() if not task.has_state(PRUNABLE)}
    keep = {root.id}
    if workflow.last_task is not None:
        keep.add(workflow.last_task.id)
    stack = [(root.id, False)]
    while stack:  # iterative: an old state's tree is thousands of levels deep
        key, below_protected = stack.pop()
        task = tasks[key]
        if below_protected or key in protected:
            keep.add(key)
            if task._parent is not None:
                keep.add(task._parent)
            below_protected = below_protected or not task.has_state(PRUNABLE)
        stack.extend((child, below_protected) for child in task._children)
    return keep


Serialize = Callable[[dict[UUID, Any]], dict[str, Any]]


def prune_workflow(workflow: Any, serialize: Serialize) -> dict[str, Any]:
    """Splice the finished history out of one workflow's tree; returns the removed tasks, serialized
    (before they leave: each as it was, under its old parent)."""
    tasks, root = workflow.tasks, workflow.task_tree
    keep = _kept(workflow)
    if len(keep) == len(tasks):
        return {}
    removed: dict[UUID, Any] = {}
    children: dict[UUID, list[UUID]] = {key: [] for key in keep}
    parents: dict[UUID, UUID] = {}
    stack: list[tuple[UUID, UUID | None]] = [(root.id, None)]
    while stack:  # depth first, children in order: each kept task's new children keep the tree's order
        key, anchor = stack.pop()
        task = tasks[key]
        if key in keep:
            if anchor is not None:
                children[anchor].append(key)
                parents[key] = anchor
            anchor = key
        else:
            removed[key] = task
        stack.extend((child, anchor) for child in reversed(task._children))
    records = serialize(removed)
    _apply(workflow, removed, children, parents)
    return records


def _apply(workflow: Any, removed: dict[UUID, Any], children: dict[UUID, list[UUID]],
           parents: dict[UUID, UUID]) -> None:
    tasks = workflow.tasks
    for key, child_ids in children.items():
        tasks[key]._children = child_ids
    for key, parent in parents.items():
        tasks[key]._parent = parent
    for key, task in removed.items():
        del tasks[key]
        workflow.top_workflow.event_manager.remove_task(task)


def prune(workflow: Any, serialize: Serialize) -> list[dict[str, Any]]:
    """Prune the workflow and its sub-workflows; drop sub-workflows whose task has left.

    Returns, for each workflow that lost tasks, ``{"workflow": None for the top workflow or the id of the
    sub-workflow's task, "spec": the workflow's spec name, "tasks": the removed tasks, serialized}``.
    """
    removed: dict[Any, dict[str, Any]] = {}

    def record(key: Any, sub: Any, tasks: dict[str, Any]) -> None:
        if tasks:  # a sub-workflow pruned and then left whole: one group
            group = removed.setdefault(key, {"workflow": None if key is None else str(key),
                                             "spec": sub.spec.name, "tasks": {}})
            group["tasks"].update(tasks)

    record(None, workflow, prune_workflow(workflow, serialize))
    for key, sub in list(workflow.subprocesses.items()):
        record(key, sub, prune_workflow(sub, serialize))
    present = set(workflow.tasks)
    for sub in workflow.subprocesses.values():
        present |= set(sub.tasks)
    orphaned = True
    while orphaned:  # nested sub-workflows leave with their parent's
        orphaned = False
        for key, sub in list(workflow.subprocesses.items()):
            if key not in present:
                del workflow.subprocesses[key]
                present -= set(sub.tasks)
                record(key, sub, serialize(sub.tasks))
                for task in sub.tasks.values():
                    workflow.event_manager.remove_task(task)
                orphaned = True
    return list(removed.values())
