"""SpiffWorkflow's tasks as the engine asks about them: which are ready or waiting, and the two places the
engine grows a task tree itself (a triggered event subprocess, a timer start fired by its job)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.util.task import TaskState


def ready_tasks(workflow: Any) -> list[Any]:
    """The tasks an engine step would run next (user and manual tasks wait here for a person)."""
    return list(workflow.get_tasks(state=TaskState.READY))


def waiting_tasks(workflow: Any) -> list[Any]:
    """The tasks that wait for an event (a message, a timer, an event-based gateway's events)."""
    return list(workflow.get_tasks(state=TaskState.WAITING))


def is_ready(task: Any) -> bool:
    return bool(task.state == TaskState.READY)


def add_triggered_child(parent: Any, task_spec: Any) -> Any:
    """Add a triggered child task for ``task_spec`` under ``parent`` without changing the (shared) spec, as
    ``BpmnStartTask.trigger_wf`` does after connecting it (private API: 3.2.0 offers no public way)."""
    child = parent._add_child(task_spec, TaskState.FUTURE)
    child.triggered = True
    child.task_spec._update(child)
    return child


def fire_waiting_start_event(workflow: Any, is_start: Any) -> None:
    """Let a waiting (timer) start event through, as its event would: 3.2.0 creates a cycle timer's outputs
    only as it fires, so they are added and predicted here (private API: no public way to fire a start)."""
    for task in waiting_tasks(workflow):
        if is_start(task.task_spec):
            task.internal_data = {"event_fired": True}
            if not task.children:
                for output in task.task_spec.outputs:
                    child = task._add_child(output, TaskState.FUTURE)
                    child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
            task.task_spec._update(task)


def completed_tasks(workflow: Any) -> list[Any]:
    return list(workflow.get_tasks(state=TaskState.COMPLETED))


def is_completed_state(state: int) -> bool:
    """A serialized task's ``state`` (an int) says it completed."""
    return bool(state == TaskState.COMPLETED)
