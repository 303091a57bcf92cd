"""Instances: load a workflow onto its cached spec, run engine steps, and persist everything in one go.

``InstanceRuntime.step`` is the one way an instance changes: it locks the row (row lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite, and the ORM's version counter everywhere), restores or reuses the
workflow, lets the caller apply its change, runs engine steps, and writes the state together with the
human-task index, jobs, message subscriptions and audit events of that change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine import audit, failpoints
from engine.audit import Actor
from engine.clock import Clock
from engine.dmn.shared import SharedDecisions
from engine.errors import Conflict, GmpflowError, NotFound, ScriptFailed
from engine.runtime import record_locks, rows
from engine.runtime.rows import DeploymentRef, InstanceRow
from engine.runtime.specs import SpecCache
from engine.runtime.sync import Derived, derive, sync_instance
from engine.runtime.variables import variables_of as variables_of  # where callers have found it
from engine.spiff import clock as clocked
from engine.spiff import state as spiff
from engine.spiff.parsing import ParsedDefinition
from engine.spiff.script_engine import SandboxScriptEngine
from engine.spiff.tasks import ready_tasks
from engine.spiff.workflow import BpmnWorkflow, SpiffWorkflowException, WorkflowDataException
from engine.states import InstanceStatus
from engine.store import Database
from engine.store.db import UnitOfWork
from engine.store.dbapi import dbapi
from engine.store.models import Deployment, ProcessInstance

LIVE_CACHE_SIZE = 512
STEPPABLE = (InstanceStatus.RUNNING, InstanceStatus.WAITING, InstanceStatus.FAILED)
_ROW = select(ProcessInstance).where(ProcessInstance.id == bindparam("id"))
_ROW_LOCKED = _ROW.with_for_update(of=ProcessInstance)  # SQLite ignores it: BEGIN IMMEDIATE holds the lock


@dataclass
class Live:
    """An instance row with its workflow restored onto the cached spec.

    ``indexed`` is what the stored indexes (task rows, jobs, subscriptions) hold for the workflow as
    last persisted, so a step writes only what changed; ``handled`` are task guids whose rows the
    caller settles itself during this step (the completed task, the job that ran).
    """

    row: InstanceRow
    workflow: BpmnWorkflow
    parsed: ParsedDefinition
    indexed: Derived = field(default_factory=Derived)
    correlation: Any = None
    handled: set[str] = field(default_factory=set)


def translate_spiff_error(exc: Exception) -> GmpflowError:
    cause: BaseException | None = exc
    for _ in range(5):  # SpiffWorkflow wraps what a DMN cell raised: the engine's own error keeps its code
        if isinstance(cause, GmpflowError):
            return cause
        cause = cause.__cause__ or cause.__context__ if cause is not None else None
    task = getattr(exc, "task", None)
    element = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
    if isinstance(exc, WorkflowDataException):
        return data_error(exc, element)
    return ScriptFailed(f"The process failed at {element or 'an engine step'}: {exc}", element_id=element)


def data_error(exc: WorkflowDataException, element: str | None) -> ScriptFailed:
    """A task that did not get or write the data its model declares (data input/output, multi-instance
    input or output item): the model's fault, said with the element and the variable."""
    where = element or "an engine step"
    if exc.data_output is not None:
        item = getattr(exc.data_output, "bpmn_id", None) or "?"
        return ScriptFailed(f"The process failed at {where}: the task did not write '{item}', which its "
                            "model declares as its output.",
                            element_id=element, code="data_output_missing")
    if exc.data_input is not None:
        item = getattr(exc.data_input, "bpmn_id", None) or "?"
        return ScriptFailed(f"The process failed at {where}: '{item}', which its model declares as its "
                            "input, is not set.", element_id=element, code="data_input_missing")
    return ScriptFailed(f"The process failed at {where}: {exc}", element_id=element, code="data_invalid")


class InstanceRuntime:
    def __init__(self, db: Database, clock: Clock, specs: SpecCache) -> None:
        self.db, self.clock, self.specs = db, clock, specs
        self.script_engine = SandboxScriptEngine()
        self.script_engine.shared_decisions = SharedDecisions(db, specs)  # business rule tasks call by key
        self._live: OrderedDict[int, tuple[int, Live]] = OrderedDict()
        self._live_lock = threading.Lock()

    # -- workflow objects -------------------------------------------------------------------------------
    def new_workflow(self, parsed: ParsedDefinition) -> BpmnWorkflow:
        return BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=self.script_engine)

    def _restore(self, uow: UnitOfWork, row: InstanceRow) -> Live:
        with self._live_lock:
            cached = self._live.pop(row.id, None)  # taken out: nobody else may touch it meanwhile
        if cached is not None and cached[0] == row.lock_version:
            live = cached[1]
            live.row, live.handled = row, set()
            return live
        parsed = self.parsed(uow, row.deployment_id)
        state = rows.instance_state(uow.db, row.id)  # only a cache miss reads the state
        workflow = spiff.load_state(state, parsed.spec, parsed.subprocess_specs, self.script_engine,
                                    row.serializer_version)
        return Live(row, workflow, parsed, indexed=derive(workflow))

    def _remember(self, live: Live) -> None:
        with self._live_lock:
            self._live[live.row.id] = (live.row.lock_version, live)
            while len(self._live) > LIVE_CACHE_SIZE:
                self._live.popitem(last=False)

    def forget(self, instance_id: int) -> None:
        with self._live_lock:
            self._live.pop(instance_id, None)

    def read(self, session: Session, instance_id: int) -> Live:
        """Restore an instance for reading only (never cached back: the caller may not mutate it)."""
        db = dbapi(session)
        row = rows.load_instance(db, instance_id)
        parsed = self.specs.get_by_id(session, row.deployment_id)
        state = rows.instance_state(db, instance_id)
        return Live(row, spiff.load_state(state, parsed.spec, parsed.subprocess_specs, self.script_engine,
                                          row.serializer_version), parsed)

    def get_row(self, session: Session, instance_id: int, *, lock: bool = False) -> ProcessInstance:
        """The ORM row, for the admin's status changes (suspend, terminate, incidents); steps use ``rows``."""
        row = session.scalar(_ROW_LOCKED if lock and self.db.is_postgres else _ROW, {"id": instance_id})
        if row is None:
            raise NotFound(f"There is no process instance {instance_id}.", code="instance_not_found")
        return row

    # -- the step -----------------------------------------------------------------------------------------
    def run_engine(self, workflow: BpmnWorkflow) -> None:
        """Run engine steps until every branch waits; script errors become ScriptFailed."""
        token = clocked.CURRENT_CLOCK.set(self.clock)
        try:
            workflow.refresh_timers()
            workflow.do_engine_steps()
        except Exception as exc:
            raise translate_spiff_error(exc) from exc
        finally:
            clocked.CURRENT_CLOCK.reset(token)

    def parsed(self, uow: UnitOfWork, deployment_id: int) -> ParsedDefinition:
        """The cached parse of a deployment (the ORM reads its files on the first use in this process)."""
        return self.specs.cached(deployment_id) or self.specs.get_by_id(uow.session, deployment_id)

    def persist(self, uow: UnitOfWork, live: Live, actor: Actor, at: datetime | None = None) -> None:
        """Write the state and everything derived from it (task index, jobs, subscriptions, status).

        ``at``: the time of the request that made the step (None: the engine's own step), which its audit
        events, the human tasks it creates and the instance's end carry; jobs, timers, subscriptions and
        ``updated_at`` keep the engine's clock's now (they schedule and order the engine's own work)."""
        now = self.clock.now()
        at = at or now
        due_now = sync_instance(uow, live, actor, now, self.script_engine, frozenset(live.handled), at=at)
        if live.row.status not in (InstanceStatus.SUSPENDED, InstanceStatus.TERMINATED):
            status = live.row.status
            if live.workflow.is_completed():
                live.row.status, live.row.ended_at = InstanceStatus.COMPLETED, at
            elif status != InstanceStatus.FAILED:
                live.row.status = InstanceStatus.RUNNING if due_now else InstanceStatus.WAITING
            if live.row.status != status and live.row.status == InstanceStatus.COMPLETED:
                audit.record(uow, actor, "instance.completed", "instance", live.row.id, self.label(live.row),
                             at=at, before={"status": status}, after={"status": live.row.status})
        removed = spiff.prune_history(live.workflow)  # the step's cost stays that of the live tree
        if removed is not None:
            rows.insert_history(uow.db, live.row.id, now, removed, uow.audit_key)
        live.row.serializer_version = spiff.SERIALIZER_VERSION
        live.row.updated_at = now
        rows.update_instance(uow.db, live.row, spiff.dump_state(live.workflow), uow.audit_key)

    @contextmanager
    def step(self, instance: int | Callable[[UnitOfWork], int], actor: Actor, *,
             allow: tuple[str, ...] = STEPPABLE, at: datetime | None = None, correlation_id: str | None = None
             ) -> Iterator[tuple[UnitOfWork, Live]]:
        """One unit of work on one instance; the caller changes ``live.workflow``; engine steps follow.

        ``instance`` is the id, or a function that finds it inside the unit of work (e.g. from a task id);
        ``at`` the time of the request that asks for the step (see ``persist``), None for the engine's own;
        ``correlation_id`` the request's id, which the step's audit events carry (None for the engine's own).
        """
        live: Live | None = None
        # the caller's change (a message, a task) may check timers
        token = clocked.CURRENT_CLOCK.set(self.clock)
        try:
            with self.db.transaction(correlation_id) as uow:
                instance_id = instance if isinstance(instance, int) else instance(uow)
                row = rows.load_instance(uow.db, instance_id, lock=True)
                if row.status not in allow:
                    raise Conflict(f"Process instance {row.id} is {row.status}; this is not possible now.",
                                   code=f"instance_{row.status}")
                # the one gate of locked records (with ``create``): before anything of the step happens
                record_locks.check(uow.db, row.id, row.business_key,
                                   lambda: self.parsed(uow, row.deployment_id))
                live = self._restore(uow, row)
                try:
                    yield uow, live
                except SpiffWorkflowException as exc:  # the caller's change (a completion, a message)
                    raise translate_spiff_error(exc) from exc
                self.run_engine(live.workflow)
                self.persist(uow, live, actor, at)
                failpoints.before_commit(uow, "step.before_commit")
        except BaseException:
            live = None  # the workflow object may be half-changed: never reuse it
            raise
        finally:
            clocked.CURRENT_CLOCK.reset(token)
            if live is not None:
                self._remember(live)

    def create(self, uow: UnitOfWork, deployment: Deployment | DeploymentRef, business_key: str | None,
               variables: dict[str, Any], actor: Actor, prepare: Callable[[BpmnWorkflow], None] | None = None,
               at: datetime | None = None) -> Live:
        """Create and run a new instance of ``deployment`` inside the caller's unit of work; it joins the live
        cache once that commits (``remember_created``). ``at``: the time of the request that starts it (its
        ``started_at`` and audit events; see ``persist``), None for the engine's own start."""
        parsed = self.parsed(uow, deployment.id)
        if parsed.is_decision_service:
            raise Conflict(f"'{deployment.key}' is a decision (DMN deployed alone): processes call it from a "
                           "business rule task; it has no instances.", code="not_a_process")
        record_locks.check(uow.db, None, business_key, lambda: parsed)  # a new instance on a locked record
        workflow = self.new_workflow(parsed)
        for task in ready_tasks(workflow):
            task.data.update(variables)
        now = at or self.clock.now()
        ref = DeploymentRef(deployment.id, deployment.key, deployment.version, deployment.content_hash)
        row = rows.insert_instance(uow.db, ref, business_key, InstanceStatus.RUNNING, actor.id, now,
                                   spiff.SERIALIZER_VERSION)
        live = Live(row, workflow, parsed)
        audit.record(uow, actor, "instance.started", "instance", row.id, self.label(row), at=now,
                     after={"process": deployment.key, "version": deployment.version,
                            "business_key": business_key,
                            "variables": variables})
        if prepare is not None:
            token = clocked.CURRENT_CLOCK.set(self.clock)
            try:
                prepare(workflow)
            except SpiffWorkflowException as exc:
                raise translate_spiff_error(exc) from exc
            finally:
                clocked.CURRENT_CLOCK.reset(token)
        self.run_engine(live.workflow)
        self.persist(uow, live, actor, now)
        uow.info.setdefault("after_commit_live", []).append(live)
        return live

    def remember_created(self, uow: UnitOfWork) -> None:
        for live in uow.info.pop("after_commit_live", []):
            self._remember(live)

    @staticmethod
    def label(row: InstanceRow | ProcessInstance) -> str:
        return f"{row.process_key} #{row.id}" + (f" ({row.business_key})" if row.business_key else "")
