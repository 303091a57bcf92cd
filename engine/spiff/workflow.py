"""The workflow class and the errors SpiffWorkflow raises while it runs one (re-exported: the engine names
them from here, so only ``engine/spiff`` knows where upstream keeps them)."""

from __future__ import annotations

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowDataException  # a data input/output is missing
from SpiffWorkflow.exceptions import SpiffWorkflowException  # anything raised while a workflow runs

__all__ = ["BpmnWorkflow", "SpiffWorkflowException", "WorkflowDataException"]
