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

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import (
    audit,
    authority,
    batch,
    batch_record,
    governance,
    identity,
    modeling,
    orders,
    records,
    screens,
    signatures,
)
from engine.audit import Actor
from engine.clock import Clock
from engine.definitions import deployments
from engine.definitions.bundle import Bundle, read_bundle
from engine.definitions.lint import lint
from engine.definitions.parsing import parse_bundle
from engine.errors import AuthenticationFailed, DefinitionError, GmpflowError, NotFound, SignatureRejected
from engine.identity import Principal
from engine.masterdata.service import MasterData
from engine.operations import OperationRegistry, builtin_registry
from engine.runtime import lifecycle, messages, rows, tasks, timer_starts
from engine.runtime.instances import InstanceRuntime, variables_of
from engine.runtime.jobs import JobRunner, retry_incident
from engine.runtime.rows import InstanceRow, TaskRow
from engine.runtime.specs import SpecCache
from engine.states import DeploymentStatus, TaskState
from engine.store import Database
from engine.store.models import (
    AuditEvent,
    Deployment,
    HumanTask,
    Incident,
    Job,
    ProcessInstance,
    Setting,
    User,
)

CHANGE_CONTROL_MODES = ("required", "off")


def _history(workflow: Any) -> list[dict[str, Any]]:
    """The engine's completed BPMN steps (``completed_at`` as a POSIX timestamp)."""
    return [{"element_id": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name or t.task_spec.bpmn_id,
             "type": t.task_spec.__class__.__name__, "completed_at": t.last_state_change}
            for t in workflow.get_tasks(state=64) if getattr(t.task_spec, "bpmn_id", None)]


def change_control_mode() -> str:
    mode = os.environ.get("GMPFLOW_CHANGE_CONTROL", "required")
    if mode not in CHANGE_CONTROL_MODES:
        raise DefinitionError(f"GMPFLOW_CHANGE_CONTROL must be 'required' or 'off', not '{mode}'.",
                              code="bad_setting")
    return mode


class Gmpflow:
    """The engine. Nothing connects or starts until a method is called."""

    def __init__(self, db: Database | None = None, clock: Clock | None = None,
                 registry: OperationRegistry | None = None, change_control: str | None = None) -> None:
        self.db = db or Database()
        self.clock = clock or Clock()
        # the change-control operations need this engine's database: bound here, added to a copy
        self.registry = (registry or builtin_registry()).extended(governance.operations(self))
        # order release: master data, signatures
        self.registry = self.registry.extended(orders.operations(self))
        # SOP execution and batch release read master data and start step instances: bound here too
        self.registry = self.registry.extended(batch.operations(self))
        self.change_control = change_control or change_control_mode()
        self.specs = SpecCache()
        self.runtime = InstanceRuntime(self.db, self.clock, self.specs)
        self.jobs = JobRunner(self.runtime, self.registry)
        # engine.masterdata.service
        self.masterdata = MasterData(self.db, self.clock, lambda: self.change_control)

    # -- set-up ---------------------------------------------------------------------------------------
    def init_database(self) -> None:
        """Create or upgrade the schema, the default roles, record the change-control mode in force, and load
        the master-data types (a changed schema becomes a new type version)."""
        from engine.store.migrate import upgrade

        upgrade(self.db)
        self.record_start()
        self.masterdata.load_types(Actor.system())

    def record_start(self) -> None:
        with self.db.unit_of_work() as session:
            identity.ensure_default_roles(session)
            current = session.get(Setting, "change_control")
            if current is None or current.value != self.change_control:
                audit.record(session, Actor.system(), "setting.change_control", "setting", "change_control",
                             "change control mode", at=self.clock.now(),
                             before={"mode": current.value} if current else None,
                             after={"mode": self.change_control})
                session.merge(Setting(key="change_control", value=self.change_control))

    # -- definitions ----------------------------------------------------------------------------------
    def lint(self, paths: list[str | Path]) -> list[DefinitionError]:
        return self.lint_bundle(read_bundle(paths))

    def lint_bundle(self, bundle: Bundle) -> list[DefinitionError]:
        """Every problem of a bundle (file, element id, line), without storing anything."""
        deployments.add_referenced_forms(bundle, deployments.referenced_form_ids(bundle))
        try:
            with self.db.read() as session:
                roles = identity.role_names(session) or set(identity.DEFAULT_ROLES)
        except DBAPIError:  # linting needs no database; without one, lanes are checked against the defaults
            roles = set(identity.DEFAULT_ROLES)
        return lint(bundle, roles, self.registry)[1]

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
                            approved_by_instance_id: int | None = None) -> Deployment:
        with self.db.unit_of_work() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            deployments.set_status(session, self.clock, actor, dep, DeploymentStatus.ACTIVE, reason,
                                   approved_by_instance_id, on_status=self._deployment_status_changed)
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
            if isinstance(caller, Principal):
                variables = authority.check_start(self.runtime.parsed(uow, dep.id), caller, variables)
            live = self.runtime.create(uow, dep, business_key, variables, actor)
        self.runtime.remember_created(uow)
        return live.row

    def list_instances(self, *, key: str | None = None, version: int | None = None, status: str | None = None,
                       business_key: str | None = None, started_after: datetime | None = None,
                       started_before: datetime | None = None, limit: int = 100, offset: int = 0
                       ) -> tuple[list[ProcessInstance], int]:
        query = select(ProcessInstance)
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

    def instance_detail(self, instance_id: int) -> dict[str, Any]:
        """Status, current tasks, variables and the history of completed steps."""
        with self.db.read() as session:
            live = self.runtime.read(session, instance_id)
            task_rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                        .order_by(HumanTask.id)).all()
            jobs = session.scalars(select(Job).where(Job.instance_id == instance_id).order_by(Job.id)).all()
            incidents = session.scalars(select(Incident).where(Incident.instance_id == instance_id)).all()
            signed = [signatures.manifestation(sig, username)
                      for sig, username in signatures.signatures_of(session, instance_id)]
        return {"instance": live.row, "variables": variables_of(live.workflow),
                "history": _history(live.workflow), "tasks": list(task_rows), "jobs": list(jobs),
                "incidents": list(incidents), "signatures": signed}

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

    def instance_record(self, instance_id: int, fmt: str = "json") -> dict[str, Any] | str | bytes:
        """The inspector's copy of an instance: ``json`` (a dict), ``html`` (text) or ``pdf`` (bytes).

        All three carry the same facts (see ``engine.records``).
        """
        with self.db.read() as session:
            live = self.runtime.read(session, instance_id)
            record = records.build(session, live.row, _history(live.workflow), self.clock.now())
        if fmt == "html":
            return records.to_html(record)
        if fmt == "pdf":
            return records.to_pdf(record)
        return record

    def batch_review(self, principal: Principal, batch_id: str) -> dict[str, Any]:
        """The batch review screen: the electronic batch record (exceptions, steps, deviations, audit trail;
        see ``engine.batch_record``) and the open tasks of its release that ``principal`` may see (the release
        decision is taken and signed on its task page)."""
        record = batch_record.build(self, batch_id)
        with self.db.query() as db:
            open_tasks = [t for i in record["release"]["instance_ids"] for t in tasks.inbox(db, principal,
                                                                                             instance_id=i)]
        return {"record": record, "open_tasks": open_tasks}

    def batch_record(self, batch_id: str, fmt: str = "json") -> dict[str, Any] | str | bytes:
        """The electronic batch record of a batch (``engine.batch_record``): ``json`` (a dict), ``html``,
        ``pdf``."""
        record = batch_record.build(self, batch_id)
        if fmt == "html":
            return batch_record.to_html(record)
        if fmt == "pdf":
            return batch_record.to_pdf(record)
        return record

    def change_instance_status(self, actor: Actor, instance_id: int, action: str, reason: str | None
                               ) -> ProcessInstance:
        return lifecycle.change_status(self.runtime, actor, instance_id, action, reason)

    # -- tasks ----------------------------------------------------------------------------------------
    def list_tasks(self, principal: Principal, **filters: Any) -> list[TaskRow]:
        """Filters: ``state``, ``mine``, ``role``, ``instance_id`` (see ``tasks.inbox_filter``)."""
        with self.db.query() as db:
            return tasks.inbox(db, principal, **filters)

    def inbox(self, principal: Principal, **filters: Any) -> list[dict[str, Any]]:
        """Tasks with process and business key; filters: ``state``, ``mine``, ``process``,
        ``business_key``."""
        with self.db.read() as session:
            return screens.inbox(session, principal, **filters)

    def task_view(self, principal: Principal, task_id: int) -> dict[str, Any]:
        """A task with its instance, process name and form definition (see ``screens.task_view``)."""
        with self.db.read() as session:
            return screens.task_view(session, self.runtime, principal, task_id)

    def get_task(self, principal: Principal, task_id: int) -> TaskRow:
        with self.db.query() as db:
            task = tasks.get_task(db, task_id)
        if task.state in (TaskState.OPEN, TaskState.CLAIMED):
            tasks.check_authority(principal, task, "see")
        return task

    def claim_task(self, principal: Principal, task_id: int) -> TaskRow:
        return tasks.claim(self.runtime, principal, task_id)

    def unclaim_task(self, principal: Principal, task_id: int) -> TaskRow:
        return tasks.unclaim(self.runtime, principal, task_id)

    def complete_task(self, principal: Principal, task_id: int, data: dict[str, Any] | None,
                      signature: dict[str, Any] | None = None) -> TaskRow:
        """Complete a task; where the model asks, ``signature`` = ``{username, password, meaning}``.

        Raises SignatureRejected (see ``engine.signatures``); the task stays open, and a rejected signing
        attempt is then counted toward the signer's lockout in its own unit of work (the completion's
        transaction has rolled back).
        """
        signer = signatures.make_signer(self.clock, principal, signature)
        meaning = signature.get("meaning") if isinstance(signature, dict) else None
        try:
            return tasks.complete(self.runtime, principal, task_id, data, sign=signer,
                                  guard_context={"signature_meaning": meaning})
        except SignatureRejected as exc:
            if exc.counted_against:
                with self.db.unit_of_work() as session:
                    user = identity.get_user(session, exc.counted_against, lock=True)
                    identity.register_failure(session, self.clock, user, "signing",
                                              f"{exc.code} (task {task_id})")
            raise

    def list_signatures(self, instance_id: int | None = None, task_guids: list[str] | None = None
                        ) -> list[dict[str, Any]]:
        """Signature manifestations (printed name, UTC date-time with zone, meaning), oldest first."""
        with self.db.read() as session:
            return [signatures.manifestation(sig, username)
                    for sig, username in signatures.signatures_of(session, instance_id, task_guids)]

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

    def list_incidents(self, *, open_only: bool = True) -> list[Incident]:
        query = select(Incident).order_by(Incident.id.desc())
        if open_only:
            query = query.where(Incident.resolved_at.is_(None))
        with self.db.read() as session:
            return list(session.scalars(query))

    def retry_incident(self, actor: Actor, incident_id: int, reason: str) -> Incident:
        return retry_incident(self.runtime, actor, incident_id, reason)

    # -- identity -------------------------------------------------------------------------------------
    def add_user(self, actor: Actor, username: str, full_name: str, password: str, roles: list[str]) -> User:
        with self.db.unit_of_work() as session:
            return identity.add_user(session, self.clock, actor, username, full_name, password, roles)

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
                identity.change_password(session, self.clock, username, old, new)
                return
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def reset_password(self, actor: Actor, username: str, reason: str | None) -> str:
        """Admin reset; returns the one-time password (to hand over), which must be changed before signing."""
        with self.db.unit_of_work() as session:
            return identity.reset_password(session, self.clock, actor, username, reason)

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
        if not user.active or user.locked:
            raise AuthenticationFailed("This account can no longer sign in.", code="account_inactive")
        # e.g. reset by an admin since the token was issued
        if identity.password_change_due(user, self.clock):
            raise AuthenticationFailed("The password must be changed first.", code="password_change_required")
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
        """The audit chain, then every signature's record hash and binding to its record."""
        with self.db.read() as session:
            return signatures.verify_all(session)

    def session(self) -> Session:
        """A read session for callers that need one query the services do not offer (tests, bench)."""
        return self.db._read()
