"""The engine's service layer: one object that the CLI, the web app and the tests call.

Each method is one unit of work (or a read). Routes and commands parse input, call one method,
render the result; they never open sessions themselves.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import pluggy
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import (
    access,
    anchors,
    audit,
    authority,
    change_diff,
    identity,
    modeling,
    records,
    screens,
    sealed,
    sessions,
    signatures,
)
from engine.audit import Actor
from engine.clock import Clock
from engine.definitions import deployments, interchange
from engine.definitions.bundle import Bundle, read_bundle
from engine.definitions.lint import lint
from engine.dmn.lint import called_decisions
from engine.dmn.shared import decision_service_keys, evaluate_by_key
from engine.dmn.task import USED as DECISION_USED
from engine.errors import (
    AuthenticationFailed,
    DefinitionError,
    GmpflowError,
    NotFound,
    PasswordChangeRequired,
    SignatureRejected,
)
from engine.identity import Principal
from engine.masterdata.service import MasterData
from engine.operations import OperationRegistry, builtin_registry
from engine.packs import SealedTable, default_packs
from engine.runtime import entry_checks, lifecycle, messages, rows, tasks, timer_starts
from engine.runtime.instances import InstanceRuntime, variables_of
from engine.runtime.jobs import JobRunner, retry_incident
from engine.runtime.rows import InstanceRow, TaskRow
from engine.runtime.specs import SpecCache
from engine.signed_records import RecordBinder, RecordSource
from engine.spiff.parsing import parse_bundle, parse_documents
from engine.states import Activation, DeploymentStatus, TaskState
from engine.store import Database
from engine.store.models import (
    AuditEvent,
    AuditHead,
    Deployment,
    HumanTask,
    Incident,
    Job,
    ProcessInstance,
    Role,
    Setting,
    User,
)

CHANGE_CONTROL_MODES = ("required", "off")


def _history(workflow: Any) -> list[dict[str, Any]]:
    """The engine's completed BPMN steps (``completed_at`` as a POSIX timestamp); a business rule task's
    step names the decision it used (``engine.dmn.task``: key, and a shared decision's version)."""
    return [{"element_id": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name or t.task_spec.bpmn_id,
             "type": t.task_spec.__class__.__name__, "completed_at": t.last_state_change,
             **({"decision": t.internal_data[DECISION_USED]} if DECISION_USED in t.internal_data else {})}
            for t in workflow.get_tasks(state=64) if getattr(t.task_spec, "bpmn_id", None)]


def change_control_mode() -> str:
    mode = os.environ.get("GMPFLOW_CHANGE_CONTROL", "required")
    if mode not in CHANGE_CONTROL_MODES:
        raise DefinitionError(f"GMPFLOW_CHANGE_CONTROL must be 'required' or 'off', not '{mode}'.",
                              code="bad_setting")
    return mode


def change_control_process() -> str:
    """The key of the process whose instances alone may make deployments and master data effective:
    ``GMPFLOW_CHANGE_CONTROL_PROCESS``, default ``change_control``."""
    return os.environ.get("GMPFLOW_CHANGE_CONTROL_PROCESS") or "change_control"


class Gmpflow:
    """The engine. Nothing connects or starts until a method is called."""

    def __init__(self, db: Database | None = None, clock: Clock | None = None,
                 registry: OperationRegistry | None = None, change_control: str | None = None,
                 packs: pluggy.PluginManager | None = None) -> None:
        self.db = db or Database()
        self.clock = clock or Clock()
        self.change_control_process = change_control_process()
        # the process packs (engine.packs): gmpflow's GMP content and a site's own
        self.packs = packs or default_packs()
        # operations that need this engine's database (a model diff, a pack's change control, lots, ...):
        # bound here, added to a copy of the connectors' registry
        self.registry = (registry or builtin_registry()).extended(change_diff.operations(self))
        for contributed in self.packs.hook.gmpflow_pack_operations(engine=self):
            self.registry = self.registry.extended(contributed)
        self.change_control = change_control or change_control_mode()
        self.specs = SpecCache()
        self.runtime = InstanceRuntime(self.db, self.clock, self.specs)
        self.jobs = JobRunner(self.runtime, self.registry)
        # the records a signature can cover (model property signature.record = "<kind>:<key expression>")
        self.record_sources: dict[str, RecordSource] = {}
        for sources in self.packs.hook.gmpflow_record_sources(engine=self):
            self.record_sources.update(sources)
        self.records = RecordBinder(self.record_sources, self.runtime.script_engine)
        # engine.masterdata.service
        self.masterdata = MasterData(self.db, self.clock, lambda: self.change_control)
        # checkpoints of the audit chain outside the database (engine.anchors); a site adds stores
        key = self.db.audit_key
        self.anchors = anchors.AnchorFile(anchors.default_anchor_file(key.path), key)
        self.checkpoint_stores: list[anchors.CheckpointStore] = []
        # the packs' services, offered as this facade's own methods (``__getattr__``)
        self.pack_services: list[object] = list(self.packs.hook.gmpflow_services(engine=self))

    def __getattr__(self, name: str) -> Any:
        """A public method of a pack's services (``engine.create_lot``): the facade composes what the packs
        implement. The engine's own attributes always win (a pack cannot replace one)."""
        if not name.startswith("_"):
            for service in self.__dict__.get("pack_services", ()):
                found = getattr(service, name, None)
                if found is not None:
                    return found
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def sealed_tables(self) -> list[SealedTable]:
        """The packs' append-only sealed tables (``engine.packs.SealedTable``)."""
        return [table for tables in self.packs.hook.gmpflow_sealed_tables() for table in tables]

    # -- set-up ---------------------------------------------------------------------------------------
    def init_database(self) -> None:
        """Create or upgrade the schema, the default roles, record the change-control mode in force, and load
        the master-data types (a changed schema becomes a new type version)."""
        from engine.store.migrate import upgrade

        upgrade(self.db)
        self.record_start()
        self.masterdata.load_types(Actor.system())

    def record_start(self) -> None:
        """Introduce the audit key if the trail has none yet (``ensure_audit_key``), then record the
        change-control mode in force."""
        self.ensure_audit_key()
        with self.db.unit_of_work() as session:
            identity.ensure_default_roles(session)
            current = session.get(Setting, "change_control")
            if current is None or current.value != self.change_control:
                audit.record(session, Actor.system(), "setting.change_control", "setting", "change_control",
                             "change control mode", at=self.clock.now(),
                             before={"mode": current.value} if current else None,
                             after={"mode": self.change_control})
                session.merge(Setting(key="change_control", value=self.change_control))

    def ensure_audit_key(self) -> None:
        """A trail without a key gets one: the key file is created (mode 0600) unless it exists, the rows
        without a MAC are sealed as found, and the ``audit.keyed`` event records it, from which on the chain's
        links are MACs (``engine.audit``). A keyed trail needs its key file: AuditKeyMissing otherwise."""
        key = self.db.audit_key
        with self.db.unit_of_work() as session:
            if audit.is_keyed(session):
                key.key  # noqa: B018 -- a keyed trail cannot be written without its key: say so now
                return
            key.create()
            audit.introduce_key(session, Actor.system(), self.clock.now(), sealed.seal_unsealed(session))

    # -- definitions ----------------------------------------------------------------------------------
    def lint(self, paths: list[str | Path]) -> list[DefinitionError]:
        return self.lint_bundle(read_bundle(paths))

    def lint_bundle(self, bundle: Bundle) -> list[DefinitionError]:
        """Every problem of a bundle (file, element id, line), without storing anything."""
        deployments.add_referenced_forms(bundle, deployments.referenced_form_ids(bundle))
        shared: set[str] | None = None
        try:
            with self.db.read() as session:
                roles = identity.role_names(session) or set(identity.DEFAULT_ROLES)
                shared = decision_service_keys(session, called_decisions(parse_documents(bundle)))
                parsed, problems = lint(bundle, roles, self.registry, shared)
                # against the active version: a signature or four-eyes rule it had may not be dropped
                return problems or deployments.signature_problems(session, parsed, bundle)
        except DBAPIError:  # linting needs no database; without one, lanes are checked against the defaults
            roles = set(identity.DEFAULT_ROLES)
        except DefinitionError:  # an unreadable file: lint below says where
            pass
        return lint(bundle, roles, self.registry, shared)[1]

    def evaluate_decision(self, key: str, variables: dict[str, Any],
                          decision_id: str | None = None) -> dict[str, Any]:
        """Evaluate the active version of a DMN file deployed alone, as a business rule task would:
        ``{decision, version, deployment_id, value, variables}``. Stores nothing. Raises NotFound
        (``definition_not_found``, ``decision_not_found``) or DecisionFailed (``decision_failed``)."""
        return evaluate_by_key(self.runtime.script_engine.shared_decisions, key, variables, decision_id)

    def lint_notices(self, bundle: Bundle) -> list[interchange.Notice]:
        """What the bundle's files carry that gmpflow reads past (vendor extensions it does not run, Camunda
        values it cannot map, an assignee who is no user): said on lint and deploy, never a refusal."""
        try:
            trees = parse_documents(bundle)
        except DefinitionError:  # a file that does not parse: the lint names it
            return []
        found = [n for name, root in sorted(trees.items()) for n in interchange.notices(name, root)]
        named = interchange.assignees(trees)
        if named:
            try:
                with self.db.read() as session:
                    users = {u.username for u in identity.list_users(session) if u.active}
            except DBAPIError:  # no database: no user is known
                users = set()
            found += [interchange.Notice(f"camunda:assignee names '{who}', who is no active user: the task "
                                         "opens unclaimed, for its role.", file, node.get("id"),
                                         node.sourceline,
                                         "unknown_assignee")
                      for file, node, who in named if who not in users]
        return found

    def who_may_start(self, paths: list[str | Path]) -> tuple[str, list[str]]:
        """The key of a bundle that lints clean and who may start it (see ``start_roles``)."""
        bundle = read_bundle(paths)
        deployments.add_referenced_forms(bundle, deployments.referenced_form_ids(bundle))
        parsed = parse_bundle(bundle)
        return parsed.key, authority.who_may_start(parsed)

    def deploy(self, actor: Actor, paths: list[str | Path] | None = None, bundle: Bundle | None = None,
               activate: bool | None = None) -> tuple[Deployment, bool]:
        bundle = bundle or read_bundle(paths or [])
        activate = self.change_control == "off" if activate is None else activate
        with self.db.unit_of_work() as session:
            return deployments.deploy(session, self.clock, self.registry, actor, bundle, activate,
                                      on_status=self._deployment_status_changed)

    def activate_deployment(self, actor: Actor, deployment_id: int, reason: str,
                            approved_by_instance_id: int | None = None,
                            activated_via: Activation | None = None) -> Deployment:
        with self.db.unit_of_work() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            deployments.set_status(session, self.clock, actor, dep, DeploymentStatus.ACTIVE, reason,
                                   approved_by_instance_id, on_status=self._deployment_status_changed,
                                   activated_via=activated_via)
            return dep

    def _deployment_status_changed(self, session: Session, dep: Deployment) -> None:
        """An active version owns its timer-start schedule; any other status has none."""
        if dep.status == DeploymentStatus.ACTIVE:
            timer_starts.schedule(session, self.runtime, dep, self.clock.now())
        else:
            timer_starts.cancel(session, dep, self.clock.now())

    def definitions(self) -> list[Deployment]:
        with self.db.read() as session:
            return list(session.scalars(select(Deployment).order_by(Deployment.key, Deployment.version)))

    def start_roles(self, deployment: Deployment) -> list[str]:
        """Who may start instances of the deployment (``engine.authority.start_gate``; empty: nobody but the
        engine, the process starts on a message or a timer)."""
        return authority.who_may_start(self.runtime.specs.get(deployment))

    def start_options(self, principal: Principal) -> list[dict[str, Any]]:
        """The start page: for the latest active version of each process, how it starts and whether
        ``principal`` may start it, with its start form (``screens.start_option``), by name."""
        with self.db.read() as session:
            latest = {d.key: d.id for d in session.scalars(
                select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE)
                .order_by(Deployment.key, Deployment.version))}
            parsed = [self.runtime.specs.get_by_id(session, i) for i in latest.values()]
            options = [screens.start_option(p, principal) for p in parsed if not p.is_decision_service]
        return sorted(options, key=lambda o: (o["name"] or o["key"]).lower())

    def get_deployment(self, deployment_id: int) -> Deployment:
        with self.db.read() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            return dep

    # -- the modeler and the process overview -----------------------------------------------------------
    def process_versions(self) -> list[dict[str, Any]]:
        """Every process with each version's status and instance counts (see
        ``modeling.process_versions``)."""
        with self.db.read() as session:
            return modeling.process_versions(session)

    def deployment_overview(self, deployment_id: int) -> dict[str, Any]:
        """One version: ``deployment``, its files grouped by kind, the ``diagram`` XML and ``counts`` per
        element (open human tasks, pending jobs, open incidents of its unfinished instances)."""
        with self.db.read() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            parsed = self.runtime.specs.get_by_id(session, deployment_id)
            return {"deployment": dep, "files": modeling.bundle_files(dep),
                    "diagram": screens.diagram_xml(parsed),
                    "counts": modeling.element_counts(session, deployment_id)}

    def modeler_view(self, deployment_id: int) -> dict[str, Any]:
        """What the browser modeler opens: ``deployment``, its ``files`` grouped by kind and the connector
        operations as element ``templates`` (see ``OperationRegistry.element_templates``)."""
        with self.db.read() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            files = modeling.bundle_files(dep)
        return {"deployment": dep, "files": files, "templates": self.registry.element_templates()}

    def save_draft(self, actor: Actor, files: dict[str, str]) -> tuple[Deployment, bool]:
        """Deploy edited files as a new draft version (never active: a change control makes it so);
        raises ``DefinitionError`` (code ``lint_failed``, with ``problems``) when the lint finds any."""
        return self.deploy(actor, bundle=Bundle(dict(files)), activate=False)

    def request_change(self, principal: Principal, variables: dict[str, Any],
                       business_key: str | None = None) -> dict[str, Any]:
        """Open a change control for a draft deployment or master-data version: start ``change_control``
        with ``variables`` (``subject_kind`` and the request form's fields) and complete the requester's
        request task with them. ``{instance, task, error}``: when the request form refuses the values, the
        task stays open for the requester and ``error`` says why."""
        started = self.start_instance(principal, "change_control", business_key, variables)
        element = ("request_deployment" if variables.get("subject_kind") == "deployment"
                   else "request_masterdata")
        with self.db.read() as session:
            task: tasks.Task | None = session.scalar(select(HumanTask).where(
                HumanTask.instance_id == started.id, HumanTask.element_id == element))
        error = None
        if task is not None:
            try:
                task = self.complete_task(principal, task.id, {k: v for k, v in variables.items()
                                                               if k != "subject_kind"})
            except GmpflowError as exc:
                error = exc
        return {"instance": started, "task": task, "error": error}

    def propose_masterdata_change(self, principal: Principal, type_name: str, key: str, number: int,
                                  request: dict[str, Any]) -> dict[str, Any]:
        """Submit a master-data draft for review and open its change control (``request``: the request
        form's ``reason``, ``product_impact``, ``effective_date``); answers like ``request_change``."""
        version = self.masterdata.version(type_name, key, number)
        if version.status == "draft":
            self.masterdata.submit(principal.actor, type_name, key, number)
        return self.request_change(principal, {"subject_kind": "masterdata", "record_type": type_name,
                                               "record_key": key, "version_number": number, **request},
                                   business_key=f"{type_name} {key} v{number}")

    # -- instances ------------------------------------------------------------------------------------
    def start_instance(self, caller: Principal | Actor, key: str, business_key: str | None = None,
                       variables: dict[str, Any] | None = None) -> InstanceRow:
        """Start the latest active version of ``key``. A signed-in ``Principal`` (API, web app, CLI) must
        hold a role the model lets start it and may bring only its start form's fields (``engine.authority``;
        raises NotPermitted, recorded in the audit trail, or UndeclaredField); an ``Actor`` is the engine
        itself (or its in-process callers) and is recorded as such."""
        actor = caller.actor if isinstance(caller, Principal) else caller
        variables = dict(variables or {})
        with authority.refusals(self.db, self.clock, actor), self.db.transaction() as uow:
            dep = rows.latest_active(uow.db, key)
            if isinstance(caller, Principal):  # a client: the model says who and what
                parsed = self.runtime.parsed(uow, dep.id)
                variables = authority.check_start(parsed, caller, variables)
                tasks.refuse_protected(parsed.protected_variables, variables)
            live = self.runtime.create(uow, dep, business_key, variables, actor)
        self.runtime.remember_created(uow)
        return live.row

    def list_instances(self, *, key: str | None = None, version: int | None = None, status: str | None = None,
                       business_key: str | None = None, started_after: datetime | None = None,
                       started_before: datetime | None = None, limit: int = 100, offset: int = 0,
                       reader: Principal | None = None) -> tuple[list[ProcessInstance], int]:
        """Instances and their total; a ``reader`` sees only those ``access`` lets him (None: all)."""
        query = access.visible_instances(select(ProcessInstance), reader)
        if key:
            query = query.where(ProcessInstance.process_key == key)
        if version is not None:
            query = query.join(Deployment).where(Deployment.version == version)
        if status:
            query = query.where(ProcessInstance.status == status)
        if business_key:
            query = query.where(ProcessInstance.business_key == business_key)
        if started_after:
            query = query.where(ProcessInstance.started_at >= started_after)
        if started_before:
            query = query.where(ProcessInstance.started_at < started_before)
        with self.db.read() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            found = session.scalars(query.order_by(ProcessInstance.id.desc())
                                    .limit(limit).offset(offset)).all()
        return list(found), total

    def instance_detail(self, instance_id: int, reader: Principal | None = None) -> dict[str, Any]:
        """Status, current tasks, variables and the history of completed steps; ``not_permitted`` unless
        ``reader`` may read the instance (``engine.access``; None: the engine itself)."""
        with self.db.read() as session:
            access.check_instances(session, reader, [instance_id], "this instance")
            live = self.runtime.read(session, instance_id)
            task_rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                        .order_by(HumanTask.id)).all()
            jobs = session.scalars(select(Job).where(Job.instance_id == instance_id).order_by(Job.id)).all()
            incidents = session.scalars(select(Incident).where(Incident.instance_id == instance_id)).all()
        with self.db.query() as db:
            signed = signatures.manifestations(db, instance_id)
        return {"instance": live.row, "variables": variables_of(live.workflow),
                "history": _history(live.workflow), "tasks": list(task_rows), "jobs": list(jobs),
                "incidents": list(incidents), "signatures": signed}

    def instance_status(self, instance_id: int, reader: Principal | None = None) -> InstanceRow:
        """The instance's row without its state (status, business key, times): what a client polling for
        the end of an instance needs, read from indexed columns; the same access as ``instance_detail``."""
        with self.db.query() as db:
            access.check_instance_on(db, reader, instance_id, "this instance")
            return rows.load_instance(db, instance_id)

    def instance_view(self, instance_id: int) -> dict[str, Any]:
        """``instance_detail`` for a person's screen, plus ``diagram`` (the BPMN XML of its version),
        ``markers`` (element id → completed/active/failed) and ``record`` (the inspector's copy as JSON,
        with the instance's audit trail)."""
        with self.db.read() as session:
            live = self.runtime.read(session, instance_id)
            record = records.build(session, live.row, _history(live.workflow), self.clock.now())
        detail = self.instance_detail(instance_id)
        return {**detail, "diagram": screens.diagram_xml(live.parsed), "markers": screens.markers(detail),
                "record": record}

    def instance_record(self, instance_id: int, fmt: str = "json", reader: Principal | None = None
                        ) -> dict[str, Any] | str | bytes:
        """The inspector's copy of an instance: ``json`` (a dict), ``html`` (text) or ``pdf`` (bytes).

        All three carry the same facts (see ``engine.records``). ``not_permitted`` unless ``reader`` may
        read the instance (``engine.access``).
        """
        with self.db.read() as session:
            access.check_instances(session, reader, [instance_id], "the record of this instance")
            live = self.runtime.read(session, instance_id)
            record = records.build(session, live.row, _history(live.workflow), self.clock.now())
        if fmt == "html":
            return records.to_html(record)
        if fmt == "pdf":
            return records.to_pdf(record)
        return record

    def change_instance_status(self, actor: Actor, instance_id: int, action: str, reason: str | None
                               ) -> ProcessInstance:
        return lifecycle.change_status(self.runtime, actor, instance_id, action, reason)

    # -- tasks ----------------------------------------------------------------------------------------
    def list_tasks(self, principal: Principal, **filters: Any) -> list[TaskRow]:
        """Filters: ``state``, ``mine``, ``role``, ``instance_id`` (see ``tasks.inbox_filter``). Done tasks
        only of instances whose records the principal may read (their data is part of the record)."""
        with self.db.query() as db:
            found = tasks.inbox(db, principal, **filters)
        waiting = (TaskState.OPEN, TaskState.CLAIMED)
        done = {t.instance_id for t in found if t.state not in waiting}
        if not done:
            return found
        with self.db.read() as session:
            hidden = done - access.visible_ids(session, principal, done)
        return [t for t in found if t.state in waiting or t.instance_id not in hidden]

    def inbox(self, principal: Principal, **filters: Any) -> list[dict[str, Any]]:
        """Tasks with process and business key; filters: ``state``, ``mine``, ``process``,
        ``business_key``."""
        with self.db.read() as session:
            return screens.inbox(session, principal, **filters)

    def task_view(self, principal: Principal, task_id: int) -> dict[str, Any]:
        """A task with its instance, process name and form definition (see ``screens.task_view``)."""
        with self.db.read() as session:
            view = screens.task_view(session, self.runtime, principal, task_id)
            view["signed_record"] = self._signed_record(session, view["task"])
            variables = variables_of(self.runtime.read(session, view["task"].instance_id).workflow)
        # what the decision is about (a change, its risk, impact; a batch's exceptions): the packs say
        view["context"] = self.packs.hook.gmpflow_task_context(engine=self, instance=view["instance"],
                                                               variables=variables)
        return view

    def _signed_record(self, session: Session, task: Any) -> dict[str, Any] | None:
        """``{kind, key, sha256}`` of the record an open task's signature covers (what the page shows and
        sends back with the signature), or None."""
        if task.state not in (TaskState.OPEN, TaskState.CLAIMED) or not task.signature_meaning:
            return None
        from uuid import UUID

        workflow = self.runtime.read(session, task.instance_id).workflow
        spiff_task = workflow.get_task_from_id(UUID(task.task_guid))
        found = self.records.target(spiff_task.task_spec, spiff_task.data) if spiff_task is not None else None
        if found is None:
            return None
        return {k: v for k, v in self.records.current(session, *found).items() if k != "content"}

    def get_task(self, principal: Principal, task_id: int) -> TaskRow:
        with self.db.query() as db:
            task = tasks.get_task(db, task_id)
        with self.db.read() as session:
            tasks.check_may_see(session, principal, task)
        return task

    def claim_task(self, principal: Principal, task_id: int) -> TaskRow:
        """Raises NotPermitted (audited) when the task needs a qualification the principal lacks."""
        with authority.refusals(self.db, self.clock, principal.actor):
            return tasks.claim(self.runtime, principal, task_id)

    def unclaim_task(self, principal: Principal, task_id: int) -> TaskRow:
        return tasks.unclaim(self.runtime, principal, task_id)

    def complete_task(self, principal: Principal, task_id: int, data: dict[str, Any] | None,
                      signature: dict[str, Any] | None = None) -> TaskRow:
        """Complete a task; where the model asks, ``signature`` = ``{username, password, meaning}``.

        Raises ``entry_checks.Refused`` (422, the reason as its code) when the task's entry check refuses,
        before the signature is looked at: nothing of the completion is stored, the attempt is recorded as
        the audit event ``task.entry_refused``. Raises SignatureRejected (see ``engine.signatures``); the
        task stays open, and a rejected signing
        attempt is then counted toward the signer's lockout in its own unit of work (the completion's
        transaction has rolled back).
        """
        signer = signatures.make_signer(self.clock, principal, signature, self.records)
        meaning = signature.get("meaning") if isinstance(signature, dict) else None
        try:
            with authority.refusals(self.db, self.clock, principal.actor):
                return tasks.complete(self.runtime, principal, task_id, data, sign=signer,
                                      guard_context={"signature_meaning": meaning}, registry=self.registry)
        except entry_checks.Refused as exc:  # the attempt stays visible; the completion rolled back
            with self.db.unit_of_work() as session:
                attempt = exc.attempt
                audit.record(session, principal.actor, "task.entry_refused", "task", attempt["task_id"],
                             f"{attempt['task']} ({attempt['business_key'] or attempt['instance_id']})",
                             at=self.clock.now(), after=attempt, reason=exc.message)
            raise
        except SignatureRejected as exc:
            if exc.counted_against:
                with self.db.unit_of_work() as session:
                    user = identity.get_user(session, exc.counted_against, lock=True)
                    identity.register_failure(session, self.clock, user, "signing",
                                              f"{exc.code} (task {task_id})")
            raise

    def list_signatures(self, instance_id: int | None = None, task_guids: list[str] | None = None,
                        reader: Principal | None = None) -> list[dict[str, Any]]:
        """Signature manifestations (printed name, UTC date-time with zone, meaning), oldest first.
        ``not_permitted`` unless ``reader`` reads every record, or takes part in ``instance_id``."""
        if instance_id is None:
            access.check_every_record(reader, "the signatures of every instance")
        else:
            with self.db.read() as session:
                access.check_instances(session, reader, [instance_id], "the signatures of this instance")
        with self.db.query() as db:
            return signatures.manifestations(db, instance_id, task_guids)

    # -- messages, jobs, incidents ----------------------------------------------------------------------
    def correlate(self, sender: Principal | Actor, name: str, correlation_keys: dict[str, Any] | None = None,
                  payload: dict[str, Any] | None = None, ttl_seconds: int | None = None) -> dict[str, Any]:
        """Deliver a message. A signed-in ``Principal`` must be a sender the catching event allows, with its
        declared fields only (raises NotPermitted, recorded in the audit trail, or UndeclaredField); an
        ``Actor`` is the engine itself."""
        actor = sender.actor if isinstance(sender, Principal) else sender
        with authority.refusals(self.db, self.clock, actor):
            return messages.correlate(self.runtime, sender, name, dict(correlation_keys or {}),
                                      dict(payload or {}), ttl_seconds)

    def run_jobs_once(self) -> int:
        return self.jobs.run_once()

    def next_job_due(self) -> datetime | None:
        return self.jobs.next_due()

    def list_incidents(self, *, open_only: bool = True) -> list[Incident]:
        query = select(Incident).order_by(Incident.id.desc())
        if open_only:
            query = query.where(Incident.resolved_at.is_(None))
        with self.db.read() as session:
            return list(session.scalars(query))

    def retry_incident(self, actor: Actor, incident_id: int, reason: str) -> Incident:
        return retry_incident(self.runtime, actor, incident_id, reason)

    # -- identity -------------------------------------------------------------------------------------
    def add_user(self, actor: Actor, username: str, full_name: str, password: str, roles: list[str], *,
                 one_time: bool = False) -> User:
        """``one_time``: the password is chosen by an admin and must be changed at first sign-in."""
        with self.db.unit_of_work() as session:
            return identity.add_user(session, self.clock, actor, username, full_name, password, roles,
                                     one_time=one_time)

    def add_role(self, actor: Actor, name: str, description: str, reason: str | None) -> Role:
        with self.db.unit_of_work() as session:
            return identity.add_role(session, self.clock, actor, name, description, reason)

    def list_roles(self) -> list[Role]:
        with self.db.read() as session:
            return identity.list_roles(session)

    def list_users(self) -> list[User]:
        """Every user ever created (usernames are never reused), with lock state and failed attempts."""
        with self.db.read() as session:
            return identity.list_users(session)

    def change_password(self, username: str, old: str, new: str) -> None:
        """The user's own change (also the way out of a one-time or expired password).

        A wrong old password is recorded and counts toward lockout before AuthenticationFailed is raised.
        """
        failure: AuthenticationFailed | None = None
        with self.db.unit_of_work() as session:
            try:
                user = identity.change_password(session, self.clock, username, old, new)
                sessions.revoke_all(session, self.clock, user.id)  # a stolen token dies with the old password
                return
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def reset_password(self, actor: Actor, username: str, reason: str | None) -> str:
        """Admin reset; returns the one-time password (to hand over), which must be changed before signing."""
        with self.db.unit_of_work() as session:
            one_time = identity.reset_password(session, self.clock, actor, username, reason)
            sessions.revoke_all(session, self.clock, identity.get_user(session, username).id)
            return one_time

    def unlock_user(self, actor: Actor, username: str, reason: str | None) -> User:
        with self.db.unit_of_work() as session:
            return identity.unlock_user(session, self.clock, actor, username, reason)

    def set_user_active(self, actor: Actor, username: str, active: bool, reason: str | None) -> User:
        with self.db.unit_of_work() as session:
            return identity.set_user_active(session, self.clock, actor, username, active, reason)

    def grant_role(self, actor: Actor, username: str, role: str, reason: str | None) -> User:
        with self.db.unit_of_work() as session:
            return identity.grant_role(session, self.clock, actor, username, role, reason)

    def remove_role(self, actor: Actor, username: str, role: str, reason: str | None) -> User:
        with self.db.unit_of_work() as session:
            return identity.remove_role(session, self.clock, actor, username, role, reason)

    def authenticate(self, username: str, password: str) -> Principal:
        """Check a login; a failure is recorded (and counts toward lockout) before it is raised."""
        failure: AuthenticationFailed | None = None
        with self.db.unit_of_work() as session:
            try:
                return identity.authenticate(session, self.clock, username, password)
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def sign_in(self, username: str, password: str, key: str, kind: str = sessions.API
                ) -> tuple[Principal, str, datetime]:
        """Check a login (as ``authenticate``) and issue a credential of ``kind`` (an API token or a browser
        session) bound to the installation's secret ``key``: the principal, the credential, its expiry."""
        failure: AuthenticationFailed | None = None
        with self.db.unit_of_work() as session:
            try:
                found = identity.authenticate(session, self.clock, username, password)
                user_id = identity.get_user(session, username).id
                credential, expires = sessions.issue(session, self.clock, key, user_id, kind)
                return found, credential, expires
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def sign_out(self, credential: str, key: str) -> None:
        """End one token or browser session on the server (logout); an unknown credential changes nothing."""
        with self.db.unit_of_work() as session:
            sessions.revoke(session, self.clock, key, credential)

    def principal_for(self, credential: str, key: str, kind: str = sessions.API) -> Principal:
        """The principal of a live credential (one statement, no argon2); raises AuthenticationFailed
        (``token_invalid``, ``token_revoked``, ``token_expired``, ``account_inactive``) or
        PasswordChangeRequired."""
        with self.db.query() as db:
            user, principal = sessions.resolve(db, self.clock, key, credential, kind)
        return self._usable(user, principal)

    def secret(self, name: str) -> str:
        """A random installation secret (e.g. ``secret_key`` for signing API tokens) kept in ``setting``.

        Created on first use; later calls, from any process, return the stored value.
        """
        with self.db.unit_of_work() as session:
            row = session.get(Setting, name)
            if row is None:
                row = Setting(key=name, value=secrets.token_urlsafe(48))
                session.add(row)
            return row.value

    def principal(self, username: str) -> Principal:
        with self.db.query() as db:
            user, principal = identity.account(db, username)
        return self._usable(user, principal)

    def _usable(self, user: identity.Account, principal: Principal) -> Principal:
        if not user.active or user.locked:
            raise AuthenticationFailed("This account can no longer sign in.", code="account_inactive")
        # e.g. the password grew too old since the token was issued
        if identity.password_change_due(user, self.clock):
            raise PasswordChangeRequired("The password must be changed first.")
        return principal

    # -- audit ----------------------------------------------------------------------------------------
    def audit_events(self, *, object_type: str | None = None, object_id: str | None = None,
                     actor: str | None = None, action: str | None = None, after: datetime | None = None,
                     before: datetime | None = None, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        query = select(AuditEvent)
        for column, value in ((AuditEvent.object_type, object_type), (AuditEvent.object_id, object_id),
                              (AuditEvent.actor_id, actor), (AuditEvent.action, action)):
            if value:
                query = query.where(column == value)
        if after:
            query = query.where(AuditEvent.at >= after)
        if before:
            query = query.where(AuditEvent.at < before)
        with self.db.read() as session:
            return list(session.scalars(query.order_by(AuditEvent.seq).limit(limit).offset(offset)))

    def verify_audit(self) -> audit.ChainReport:
        """The audit chain (keyed), the database against the anchor file's checkpoints, every signature's
        record hash and binding to its record, and every sealed row's MAC (``engine.sealed``); the first
        failure is reported. ``checked`` counts events, checkpoints, signatures and rows."""
        with self.db.read() as session:
            report = audit.verify_chain(session)
            if not report.ok:
                return report
            checked = report.checked
            lines, anchor_problem = anchors.verify(session, self.anchors)
            checked += lines
            if anchor_problem is not None:
                return audit.ChainReport(False, checked, anchor_problem.first_broken, anchor_problem.reason)
            signed, failure = signatures.verify_signatures(session)
            checked += signed
            if failure:
                return audit.ChainReport(False, checked, None, f"signature {failure[0]}: {failure[1]}")
            rows_checked, problem = sealed.verify_rows(session, self.sealed_tables())
            checked += rows_checked
        if problem is not None:
            return audit.ChainReport(False, checked, None, str(problem), table=problem.table,
                                     row_id=problem.row_id)
        return audit.ChainReport(True, checked, None, None)

    def anchor_audit(self, actor: Actor, *, only_if_changed: bool = False) -> dict[str, Any] | None:
        """Append a checkpoint of the chain's head (sequence, MAC, time) to the anchor file and record it in
        the trail (``audit.anchored``); returns the line, or None when ``only_if_changed`` and nothing but
        the last anchor's own event happened since. Raises AnchorBroken when the file does not verify."""
        now = self.clock.now()
        with self.db.unit_of_work() as session:
            head = session.get(AuditHead, 1)
            if head is None or head.keyed_from is None:
                raise GmpflowError("The audit trail has no key yet: run `gmpflow init` to introduce it.",
                                   code="audit_not_keyed")
            with self.anchors.locked() as lines:
                if only_if_changed and lines and head.seq <= lines[-1]["seq"] + 1:
                    return None
                line = self.anchors.append(lines, head.seq, head.hash, now)
            audit.record(session, actor, anchors.ANCHORED_ACTION, "audit", line["n"], f"anchor {line['n']}",
                         at=now, after={"anchor": line["n"], "seq": line["seq"], "mac": line["mac"],
                                        "line_mac": line["line_mac"], "file": str(self.anchors.path)})
        for store in self.checkpoint_stores:
            store.append(line)
        return line

    def session(self) -> Session:
        """A read session for callers that need one query the services do not offer (tests, bench)."""
        return self.db._read()
