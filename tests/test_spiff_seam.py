"""The seam to SpiffWorkflow (engine/spiff/) leans on a few things upstream does not promise: private methods,
two monkeypatches and the shape of some signatures. Each is pinned here, so a SpiffWorkflow upgrade fails in
this file, naming what moved, before it misbehaves in a workflow."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.specs.control import BpmnStartTask
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptEngineTask
from SpiffWorkflow.bpmn.util import task as bpmn_task_util
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.specs.defaults import ServiceTask
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util import task as task_util
from SpiffWorkflow.util.task import TaskState

from engine.clock import FrozenClock
from engine.spiff import UPSTREAM_VERSION, clock, events
from engine.spiff import state as spiff_state


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_installed_spiffworkflow_is_the_release_the_seam_was_written_for() -> None:
    assert version("SpiffWorkflow") == UPSTREAM_VERSION


def test_task_iterators_take_max_depth_second_so_the_depth_guard_raises_the_right_default() -> None:
    # engine/spiff/state.py rewrites __init__.__defaults__[1]: 3.2.0 stops finding tasks past depth 1000
    for iterator in (task_util.TaskIterator, bpmn_task_util.BpmnTaskIterator):
        signature = inspect.signature(iterator.__init__)
        empty = inspect.Parameter.empty
        defaulted = [name for name, p in signature.parameters.items() if p.default is not empty]
        assert defaulted[:2] == ["end_at_spec", "max_depth"], iterator
        assert signature.parameters["max_depth"].default == spiff_state.MAX_TREE_DEPTH


def test_spiffworkflow_timers_read_the_engine_clock_through_the_patched_module_datetime() -> None:
    # engine/spiff/clock.py replaces the timer module's `datetime`: its code calls datetime.now(timezone.utc)
    assert spiff_timer.datetime is clock._ClockedDatetime
    frozen = FrozenClock(datetime(2020, 2, 1, tzinfo=timezone.utc))
    token = clock.CURRENT_CLOCK.set(frozen)
    try:
        _, start, every = TimerEventDefinition.parse_iso_recurring_interval("R2/PT1H")
        month = TimerEventDefinition.get_timedelta_from_start(TimerEventDefinition.parse_iso_duration("P1M"))
    finally:
        clock.CURRENT_CLOCK.reset(token)
    assert start == frozen.now() + timedelta(hours=1) and every == timedelta(hours=1)
    assert month == timedelta(days=29)  # February 2020, as the frozen clock says, not this month


def test_event_subprocess_wiring_replaces_trigger_wf_and_test_as_upstream_calls_them() -> None:
    # engine/runtime/event_subprocesses.wire sets both on each parsed spec (3.2.0 changes the shared spec)
    assert parameters(BpmnStartTask.trigger_wf) == ["self", "my_task", "spec_name"]
    assert parameters(TaskSpec.test) == ["self"]


def test_the_private_task_methods_the_seam_calls_still_exist_with_their_parameters() -> None:
    # engine/spiff/tasks.py: add_triggered_child and fire_waiting_start_event
    assert parameters(Task._add_child) == ["self", "task_spec", "state"]
    assert parameters(TaskSpec._update) == ["self", "my_task"]
    assert parameters(TaskSpec._predict) == ["self", "my_task", "seen", "looked_ahead", "mask"]
    assert TaskState.NOT_FINISHED_MASK & TaskState.FUTURE


def test_the_private_hooks_the_seam_overrides_are_still_called_by_upstream() -> None:
    # an override of a renamed hook would silently stop running
    assert "_add_data_stores" in inspect.getsource(BpmnParser)  # engine.spiff.parsing.GmpParser
    assert "_run_hook" in inspect.getsource(TaskSpec)  # engine.spiff.dmn.BusinessRuleTask
    assert parameters(SpiffBpmnTask._run_hook) == ["self", "my_task"]
    assert "return self._execute(task)" in inspect.getsource(ScriptEngineTask)  # state.DeferredServiceTask
    assert ScriptEngineTask in ServiceTask.__mro__
    assert parameters(SpiffTaskParser._parse_extensions) == ["node"]  # engine.spiff.dmn.decision_ref


def test_a_message_event_matches_a_catch_event_parsed_by_the_spiff_parser() -> None:
    # SpiffWorkflow compares event definitions by exact class: events.message must use the Spiff one
    from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition

    event = events.message("lot.released", {"lot": "L1"})
    assert type(event.event_definition) is MessageEventDefinition and event.payload == {"lot": "L1"}
