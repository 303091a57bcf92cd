"""The one adapter between gmpflow and SpiffWorkflow 3.2.0 (pinned exactly: its API moves between minors).

What lives here and why:
- ``DeferredServiceTask``: service tasks never call out during engine steps; they wait as jobs, and a
  worker hands the result back (side effects after commit, never inside the instance transaction).
- a serializer that stores the workflow *without* its spec: specs are parsed once per deployment and
  cached; the state is restored onto the cached spec objects.
- the task-iteration depth guard: 3.2.0 stops finding tasks past depth 1000 without an error.
- the state's format version (``SERIALIZER_VERSION``, stored in ``process_instance.serializer_version``) and
  one named migration per version step (``MIGRATIONS``), applied when a state is read.
- ``prune_history``: finished history leaves the live tree before each write (``engine.spiff.history``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnSubWorkflowConverter, BpmnWorkflowConverter
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.util import task as bpmn_task_util
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask as SpiffBusinessRuleTask
from SpiffWorkflow.spiff.specs.defaults import ServiceTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util import task as task_util
from SpiffWorkflow.util.deep_merge import DeepMerge

from engine.dmn.task import BusinessRuleTask, BusinessRuleTaskConverter
from engine.errors import GmpflowError
from engine.runtime import event_subprocesses
from engine.spiff import history

# Every loop iteration deepens SpiffWorkflow's task tree; its iterators silently stop at depth 1000,
# after which ready tasks are no longer found. Engine steps use the default, so raise the default.
MAX_TREE_DEPTH = 10_000_000
for _iterator in (task_util.TaskIterator, bpmn_task_util.BpmnTaskIterator):
    _defaults = list(_iterator.__init__.__defaults__ or ())
    _defaults[1] = MAX_TREE_DEPTH  # (end_at_spec, max_depth, ...)
    _iterator.__init__.__defaults__ = tuple(_defaults)

SERVICE_RESULT = "gmpflow_service_result"


class DeferredServiceTask(ServiceTask):
    """A service task that waits (like a manual task) until a worker delivers the call's result."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manual = True

    def _execute(self, task: Any) -> bool:
        if SERVICE_RESULT not in task.internal_data:
            raise RuntimeError(f"service task {self.bpmn_id} ran without a result from its job")
        task.data[self.result_variable] = task.internal_data.pop(SERVICE_RESULT)
        return True


def wire_specs(*specs: Any) -> None:
    """Connect each multi-instance task to its child's completion, as SpiffWorkflow's spec restore does.

    A freshly parsed spec connects it only when the first child is created; a workflow restored
    mid-loop onto a freshly parsed spec would otherwise never merge its children and stall.
    """
    for spec in specs:
        event_subprocesses.wire(spec)
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, LoopTask):
                child = spec.task_specs[task_spec.task_spec]
                if not child.completed_event.is_connected(task_spec.merge_child):
                    child.completed_event.connect(task_spec.merge_child)


def tasks_to_dict(tasks: dict[UUID, Any], registry: Any) -> dict[str, Any]:
    """``TaskConverter.to_dict`` over a workflow's whole task map in one pass: the same dicts (pinned by
    tests/test_state_serializer.py), twice as fast: each id is formatted once instead of four times, and no
    registry dispatch per task. Every step serializes every task of its instance."""
    ids = {key: str(key) for key in tasks}
    typename = registry.typenames[Task]
    convert, updated, deleted = registry.convert, DeepMerge.get_updated_keys, DeepMerge.get_deleted_keys
    result = {}
    for key, task in tasks.items():
        parent = task.parent
        if parent is None:
            data, delta = task.data, {}
        else:
            data = {}
            delta = {"updates": updated(parent.data, task.data), "deletions": deleted(parent.data, task.data)}
        result[ids[key]] = {
            "id": ids[key],
            "parent": None if parent is None else ids.get(task._parent) or str(task._parent),
            "children": [ids.get(child) or str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": convert(task.internal_data),
            "data": data,
            "delta": delta,
            "typename": typename,
        }
    return result


def workflow_to_dict(converter: Any, workflow: Any) -> dict[str, Any]:
    """``WorkflowConverter.to_dict`` with the tasks converted by ``tasks_to_dict``."""
    registry = converter.registry
    return {
        "data": registry.convert(registry.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "tasks": tasks_to_dict(workflow.tasks, registry),
        "root": str(workflow.task_tree.id),
    }


class SubWorkflowConverter(BpmnSubWorkflowConverter):
    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct = workflow_to_dict(self, workflow)
        dct["parent_task_id"] = str(workflow.parent_task_id)
        dct["spec"] = workflow.spec.name
        return dct


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its spec and restores it onto given (cached) spec objects."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = workflow_to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def stock_converters() -> dict[Any, Any]:
    """SpiffWorkflow's own converters, the service task's under the engine's class."""
    config = dict(SPIFF_CONFIG)
    config[DeferredServiceTask] = config.pop(ServiceTask)
    config.pop(SpiffBusinessRuleTask)  # engine.dmn's task takes its place (same name in the state)
    config[BusinessRuleTask] = BusinessRuleTaskConverter
    return config


def _configure() -> BpmnWorkflowSerializer:
    config = stock_converters()
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    config[BpmnSubWorkflow] = SubWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


SERIALIZER = _configure()
if SERIALIZER.VERSION != "1.5":  # the task format below is 1.5's; a new SpiffWorkflow needs a migration step
    raise ImportError(f"SpiffWorkflow's serializer {SERIALIZER.VERSION} is not the pinned 1.5")
_ENCODER = SERIALIZER._encoder_cls(separators=(",", ":"))  # stateless between calls: one for every dump

# The format of the stored state. "spiff-1.5": SpiffWorkflow 1.5's workflow dict without its spec, the whole
# task tree. "gmpflow-2": the same dict, finished history pruned from the tree (kept in ``task_history``).
SERIALIZER_VERSION = "gmpflow-2"


def spiff_1_5_to_gmpflow_2(dct: dict[str, Any]) -> dict[str, Any]:
    """A whole tree is a pruned tree from which nothing was pruned yet: the instance's next step prunes it
    and keeps what leaves as records, like any other step's."""
    return dct


# version read -> (the version it becomes, the migration): applied in order until SERIALIZER_VERSION
MIGRATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "spiff-1.5": ("gmpflow-2", spiff_1_5_to_gmpflow_2),
}


def migrate(dct: dict[str, Any], version: str) -> dict[str, Any]:
    """The state dict in the current format. Raises GmpflowError for a version this engine does not know
    (written by a newer engine, or damaged): never guess at a format."""
    while version != SERIALIZER_VERSION:
        if version not in MIGRATIONS:
            known = ", ".join([*MIGRATIONS, SERIALIZER_VERSION])
            raise GmpflowError(f"The instance's state has the format '{version}', which this version of "
                               f"gmpflow cannot read (it reads {known}).", code="state_version_unknown")
        version, step = MIGRATIONS[version]
        dct = step(dct)
    return dct


def dump_state(workflow: BpmnWorkflow) -> str:
    """The workflow's state as JSON text, without the spec."""
    registry = SERIALIZER.registry
    registry._encoder_mode = True  # SpiffWorkflow's own switch for JSON-ready output
    try:
        return _ENCODER.encode(SERIALIZER.to_dict(workflow))
    finally:
        registry._encoder_mode = False


def load_state(text: str, spec: Any, subprocess_specs: dict[str, Any], script_engine: Any,
               version: str = SERIALIZER_VERSION) -> BpmnWorkflow:
    """Restore a workflow from ``dump_state`` output (of format ``version``, migrated) onto cached specs,
    with the script engine reattached."""
    dct = migrate(json.loads(text, cls=SERIALIZER.json_decoder_cls), version)
    workflow = SERIALIZER.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow


# Prune once the tree holds more tasks than this: a model's own run stays whole (the approval's tree peaks
# at 10 tasks, the test models' at 15), and a loop's tree stays below this plus one iteration, pruned every
# few dozen iterations in one record rather than a few tasks and a record at every step.
PRUNE_ABOVE = 100


def prune_history(workflow: BpmnWorkflow, above: int = PRUNE_ABOVE) -> str | None:
    """Remove the finished history from the workflow (``engine.spiff.history``) when its trees hold more than
    ``above`` tasks; the removed tasks as JSON text, each in the state's own task format under its old
    parent, grouped by workflow (``history.prune``); None when nothing left."""
    if len(workflow.tasks) + sum(len(sub.tasks) for sub in workflow.subprocesses.values()) <= above:
        return None
    registry = SERIALIZER.registry
    registry._encoder_mode = True
    try:
        removed = history.prune(workflow, lambda tasks: tasks_to_dict(tasks, registry))
        if not removed:
            return None
        return _ENCODER.encode(removed)
    finally:
        registry._encoder_mode = False


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """A spec as a plain dict (for tools that need to show it; never stored per instance)."""
    return SERIALIZER.to_dict(spec)
