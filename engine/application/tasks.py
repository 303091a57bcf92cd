"""Human tasks: inbox, task page, claim, complete (with signatures and entry checks), signatures read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine import access, audit, authority, identity, screens, signatures
from engine.application.base import EngineCore
from engine.errors import SignatureRejected
from engine.identity import Principal
from engine.request_context import RequestContext, as_request
from engine.runtime import entry_checks, tasks
from engine.runtime.instances import variables_of
from engine.runtime.rows import TaskRow
from engine.states import TaskState


class TaskServices(EngineCore):
    """Human tasks as a principal sees and acts on them."""

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

    def claim_task(self, caller: Principal | RequestContext, task_id: int) -> TaskRow:
        """Claim for the caller (a request's context, or a principal: a request of its own made now). Raises
        NotPermitted (audited) when the task needs a qualification the principal lacks."""
        context = as_request(caller, self.clock)
        with authority.refusals(self.db, context):
            return tasks.claim(self.runtime, context, task_id)

    def unclaim_task(self, caller: Principal | RequestContext, task_id: int) -> TaskRow:
        return tasks.unclaim(self.runtime, as_request(caller, self.clock), task_id)

    def complete_task(self, caller: Principal | RequestContext, task_id: int, data: dict[str, Any] | None,
                      signature: dict[str, Any] | None = None) -> TaskRow:
        """Complete a task for the caller (a request's context, or a principal: a request of its own made
        now); where the model asks, ``signature`` = ``{username, password, meaning}``. Every audit event of
        the completion (and its signature, entry check, refusal) carries the request's time.

        Raises ``entry_checks.Refused`` (422, the reason as its code) when the task's entry check refuses,
        before the signature is looked at: nothing of the completion is stored, the attempt is recorded as
        the audit event ``task.entry_refused``. Raises SignatureRejected (see ``engine.signatures``); the
        task stays open, and a rejected signing
        attempt is then counted toward the signer's lockout in its own unit of work (the completion's
        transaction has rolled back).
        """
        context = as_request(caller, self.clock)
        principal = tasks.person(context)
        signer = signatures.make_signer(self.clock, principal, signature, self.records, at=context.at)
        meaning = signature.get("meaning") if isinstance(signature, dict) else None
        try:
            with authority.refusals(self.db, context):
                return tasks.complete(self.runtime, context, task_id, data, sign=signer,
                                      guard_context={"signature_meaning": meaning}, registry=self.registry)
        except entry_checks.Refused as exc:  # the attempt stays visible; the completion rolled back
            with self.db.unit_of_work(context.correlation_id) as session:
                attempt = exc.attempt
                audit.record(session, principal.actor, "task.entry_refused", "task", attempt["task_id"],
                             f"{attempt['task']} ({attempt['business_key'] or attempt['instance_id']})",
                             at=context.at, after=attempt, reason=exc.message)
            raise
        except SignatureRejected as exc:
            if exc.counted_against:
                with self.db.unit_of_work(context.correlation_id) as session:
                    user = identity.get_user(session, exc.counted_against, lock=True)
                    identity.register_failure(session, context.clock, user, "signing",
                                              self.config.lockout_attempts, f"{exc.code} (task {task_id})")
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
