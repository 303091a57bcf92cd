"""SpiffWorkflow's events as the engine asks about them: what kind of start or catch event a spec is, the
events the engine sends into a workflow (a message, a BPMN error), and the ISO 8601 timer arithmetic."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeGuard

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition as SpiffErrorEventDefinition
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition as SpiffMessageEventDefinition

from engine.spiff import tasks


def is_start_event(task_spec: Any) -> bool:
    return isinstance(task_spec, StartEvent)


def is_none_start_event(task_spec: Any) -> bool:
    """A plain start event (no message, no timer): a person starts the process."""
    return isinstance(task_spec, StartEvent) and isinstance(task_spec.event_definition, NoneEventDefinition)


def is_event_based_gateway(task_spec: Any) -> bool:
    return isinstance(task_spec, EventBasedGateway)


def is_timer(definition: Any) -> TypeGuard[Any]:
    return isinstance(definition, TimerEventDefinition)


def is_message(definition: Any) -> TypeGuard[Any]:
    return isinstance(definition, MessageEventDefinition)


def message_start_name(task_spec: Any) -> str | None:
    """The message a start event starts on; None for any other spec."""
    definition = getattr(task_spec, "event_definition", None)
    return str(definition.name) if is_start_event(task_spec) and is_message(definition) else None


def timer_start(spec: Any) -> tuple[Any, Any] | None:
    """(start event, its timer definition) when the process starts on a timer."""
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if is_start_event(task_spec) and is_timer(definition):
            return task_spec, definition
    return None


def fire_timer_start(workflow: Any) -> None:
    """Let the waiting timer start event through: its job's due time is the event."""
    tasks.fire_waiting_start_event(workflow, is_start_event)


def message(name: str, payload: Any) -> Any:
    """A message event to send into a workflow. It must be of the parser's class: SpiffWorkflow compares event
    definitions by exact class, so a plain bpmn MessageEventDefinition never matches a Spiff-parsed catch."""
    return BpmnEvent(SpiffMessageEventDefinition(name), payload)


def bpmn_error(code: str, payload: dict[str, Any], target: Any) -> Any:
    """A BPMN error thrown at ``target`` (a (sub)workflow): boundary and event-subprocess catches see it."""
    return BpmnEvent(SpiffErrorEventDefinition(code, code=code), payload=payload, target=target)


def timer_datetime(value: str) -> datetime:
    """An ISO 8601 date-time, as SpiffWorkflow reads a timer's value."""
    return TimerEventDefinition.get_datetime(value)  # type: ignore[no-any-return]


def after_duration(duration: str, now: datetime) -> datetime:
    """``now`` plus an ISO 8601 duration (``P3D``), months and years counted on the calendar."""
    parsed = TimerEventDefinition.parse_iso_duration(duration)
    return now + TimerEventDefinition.get_timedelta_from_start(parsed, now)  # type: ignore[no-any-return]


def first_due(definition: Any, expression_value: str, now: datetime) -> tuple[datetime, int, float]:
    """A timer start's (first due time, cycles (-1: unbounded, 1: once), seconds between cycles)."""
    if isinstance(definition, CycleTimerEventDefinition):
        cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(expression_value)
        return start, cycles, duration.total_seconds()
    if isinstance(definition, DurationTimerEventDefinition):
        return after_duration(expression_value, now), 1, 0.0
    return timer_datetime(expression_value), 1, 0.0

