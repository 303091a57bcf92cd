"""An instance's variables as its workflow holds them (a leaf: ``sync`` and ``instances`` read them)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow


def variables_of(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The instance's current variables: the data of the latest task that ran."""
    task = workflow.last_task or workflow.task_tree
    return dict(task.data)
