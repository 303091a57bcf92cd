"""Process instances: start, list, read (detail, status, screen, the inspector's copy), suspend, resume,
cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from engine import access, authority, records, screens, signatures
from engine.application.base import EngineCore
from engine.identity import Principal
from engine.request_context import Caller, RequestContext, as_request
from engine.runtime import lifecycle, rows, tasks
from engine.runtime.completed_steps import completed_steps
from engine.runtime.instances import variables_of
from engine.runtime.rows import InstanceRow
from engine.store.dbapi import dbapi
from engine.store.models import Deployment, HumanTask, Incident, Job, ProcessInstance


class InstanceServices(EngineCore):
    """Process instances: each method one unit of work or one read."""

    def start_instance(self, caller: Caller, key: str,
                       business_key: str | None = None, variables: dict[str, Any] | None = None
                       ) -> InstanceRow:
        """Start the latest active version of ``key`` for the caller's request (``as_request``), started and
        audited at its time. A signed-in principal (API, web app, CLI) must hold a role the model lets start
        it and may bring only its start form's fields (``engine.authority``; raises NotPermitted, recorded in
        the audit trail, or UndeclaredField); a request without one (an ``Actor``) is the engine itself (or
        its in-process callers) and is recorded as such."""
        context = as_request(caller, self.clock)
        client, actor = context.principal, context.actor
        variables = dict(variables or {})
        with authority.refusals(self.db, context), self.db.transaction(context.correlation_id) as uow:
            dep = rows.latest_active(uow.db, key)
            if client is not None:  # a client: the model says who and what
                parsed = self.runtime.parsed(uow, dep.id)
                variables = authority.check_start(parsed, client, variables)
                tasks.refuse_protected(parsed.protected_variables, variables)
            live = self.runtime.create(uow, dep, business_key, variables, actor, at=context.at)
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
            history = completed_steps(db, instance_id, live.workflow)
        return {"instance": live.row, "variables": variables_of(live.workflow),
                "history": history, "tasks": list(task_rows), "jobs": list(jobs),
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
            history = completed_steps(dbapi(session), instance_id, live.workflow)
            record = records.build(session, live.row, history, self.clock.now())
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
            history = completed_steps(dbapi(session), instance_id, live.workflow)
            record = records.build(session, live.row, history, self.clock.now())
        if fmt == "html":
            return records.to_html(record)
        if fmt == "pdf":
            return records.to_pdf(record)
        return record

    def change_instance_status(self, context: RequestContext, instance_id: int, action: str
                               ) -> ProcessInstance:
        """Suspend, resume or terminate (``action``) for the request's reason (ValidationFailed
        ``reason_required`` without one), audited as its actor at its time."""
        return lifecycle.change_status(self.runtime, context, instance_id, action)
