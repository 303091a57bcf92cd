"""The stored state: gmpflow's one-pass task serializer writes exactly what SpiffWorkflow's own converters
write (without the spec), at every step of models with subprocesses, call activities, multi-instance,
parallel branches and boundary events, with data of the types the registry converts (dates, durations)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

from engine.definitions.bundle import read_bundle
from engine.spiff import state as spiff
from engine.spiff.parsing import ParsedDefinition, parse_bundle
from engine.spiff.script_engine import SandboxScriptEngine
from tests.conftest import ROOT

MODELS = {  # model -> its start variables
    "gmp/processes/demo_approval": {},
    "tests/bpmn/subprocess_embedded.bpmn": {},
    "tests/bpmn/call_activity_bundle": {"quantity": 5},
    "tests/bpmn/mi_parallel_collection.bpmn": {"lots": ["L-1", "L-2", "L-3"]},
    "tests/bpmn/gateway_parallel.bpmn": {},
    "tests/bpmn/boundary_timer_noninterrupting.bpmn": {},
    "tests/bpmn/task_kinds_bundle": {"planned": 100},
}
ANSWER = {  # every waiting task gets all of it: what each model's gateways and scripts read, and data of the
    # types the serializer's registry converts (dates, durations) or passes on (nested lists and dicts)
    "accepted": True, "quantity": 5, "comment": "same state either way", "agent": "ethanol 70%", "passes": 2,
    "verified": True, "weighed": 10.4, "weight": 98.5, "verdict": "pass", "cleaned": True, "sampled": True,
    "when": datetime(2026, 12, 3, 8, 30, tzinfo=timezone.utc), "hold": timedelta(hours=4),
    "lines": [{"lot": "L-1", "kg": 1.5}],
}


REFERENCE = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(spiff.stock_converters()))


def _reference_state(workflow: BpmnWorkflow) -> dict[str, Any]:
    """SpiffWorkflow's serialization of the workflow, its spec left out as gmpflow leaves it out."""
    dct = json.loads(REFERENCE.serialize_json(workflow))
    del dct["spec"], dct["subprocess_specs"], dct["serializer_version"]
    return dct


def _parse(model: str) -> ParsedDefinition:
    return parse_bundle(read_bundle([ROOT / model]))


def _run(model: str, parsed: ParsedDefinition) -> Iterator[BpmnWorkflow]:
    """The workflow after each step of running ``model`` with ``ANSWER`` for every waiting task."""
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SandboxScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(MODELS[model])
    workflow.do_engine_steps()
    yield workflow
    while ready := workflow.get_tasks(state=TaskState.READY, manual=True):
        ready[0].set_data(**ANSWER)
        if isinstance(ready[0].task_spec, spiff.DeferredServiceTask):  # what a job hands back
            ready[0].internal_data[spiff.SERVICE_RESULT] = {"booked": "B-1"}
        ready[0].run()
        workflow.do_engine_steps()
        yield workflow


@pytest.mark.parametrize("model", MODELS)
def test_the_stored_state_is_what_spiffworkflow_itself_would_store(model: str) -> None:
    steps = 0
    for steps, workflow in enumerate(_run(model, _parse(model)), 1):
        assert json.loads(spiff.dump_state(workflow)) == _reference_state(workflow), f"step {steps}"
    assert steps > 1 and workflow.is_completed()


@pytest.mark.parametrize("model", MODELS)
def test_a_state_restored_and_stored_again_is_unchanged(model: str) -> None:
    parsed = _parse(model)
    for workflow in _run(model, parsed):
        state = spiff.dump_state(workflow)
        restored = spiff.load_state(state, parsed.spec, parsed.subprocess_specs, SandboxScriptEngine())
        assert json.loads(spiff.dump_state(restored)) == json.loads(state)
