"""The message start events of a process's event subprocesses: what an instance can catch while it runs.

SpiffWorkflow 3.2.0 creates an event subprocess only when its event arrives (``EventManager
.update_collaboration`` walks ``spec.start.trigger_specs``); until then no task waits, so ``waiting_events``
does not list it and the instance would not be subscribed to its message. These are derived from the spec,
which is parsed from the deployment, so they are the same before and after a reload."""

from __future__ import annotations

from typing import Any

from engine.spiff.events import is_message
from engine.spiff.tasks import add_triggered_child


def message_starts(workflow: Any) -> dict[str, str]:
    """Start event id -> message name, for the event subprocesses of the running workflow's process."""
    if workflow.is_completed():
        return {}
    found = {}
    for name in getattr(workflow.spec.start, "trigger_specs", ()) or ():
        spec = workflow.subprocess_specs.get(name)
        for start in getattr(spec, "bpmn_start_events", ()) or ():
            definition = getattr(start, "event_definition", None)
            if is_message(definition):
                found[start.bpmn_id] = definition.name
    return found


def wire(spec: Any) -> None:
    """Make the event subprocesses of a shared, cached spec work for every instance, before and after a
    reload.

    SpiffWorkflow 3.2.0 connects an event subprocess (start -> it -> end) the first time its event arrives
    (``BpmnStartTask.trigger_wf``): it changes the spec. With a spec shared by all instances of a deployment
    that connection made every later instance start the event subprocess at once and wait for it forever,
    and a workflow restored onto a freshly parsed spec failed ('No input task connected'). Here each event
    subprocess is connected to the end once, at parse time (its data reaches the end as in SpiffWorkflow),
    needs no incoming connection, and triggering it adds the task without touching the spec."""
    start = getattr(spec, "start", None)
    if start is None or not getattr(start, "trigger_specs", None):
        return
    for name in start.trigger_specs:
        task_spec = spec.task_specs[name]
        if spec.end not in task_spec.outputs:
            task_spec.connect(spec.end)
        task_spec.test = _triggered_only

    def trigger_wf(my_task: Any, spec_name: str) -> Any:
        return add_triggered_child(my_task, spec.task_specs[spec_name]).id

    start.trigger_wf = trigger_wf


def _triggered_only() -> None:
    """An event subprocess has no incoming flow: its event creates it (``TaskSpec.test`` would refuse)."""
