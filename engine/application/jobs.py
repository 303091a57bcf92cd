"""Messages, jobs and incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine import authority
from engine.application.base import EngineCore
from engine.request_context import Caller, as_request
from engine.runtime import messages
from engine.runtime.jobs import retry_incident
from engine.store.models import Incident


class JobServices(EngineCore):
    """Message delivery, the job loop's rounds and incidents."""

    def correlate(self, sender: Caller, name: str,
                  correlation_keys: dict[str, Any] | None = None, payload: dict[str, Any] | None = None,
                  ttl_seconds: int | None = None) -> dict[str, Any]:
        """Deliver a message for the sender's request (``as_request``), audited at its time. A signed-in
        principal must be a sender the catching event allows, with its declared fields only (raises
        NotPermitted, recorded in the audit trail, or UndeclaredField); an ``Actor`` is the engine itself."""
        context = as_request(sender, self.clock)
        with authority.refusals(self.db, context):
            return messages.correlate(self.runtime, context, name, dict(correlation_keys or {}),
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

    def retry_incident(self, caller: Caller, incident_id: int,
                       reason: str | None = None) -> Incident:
        """Retry an incident's failed job for the caller's request (``as_request``); the ``reason`` given,
        else the request's, is required."""
        context = as_request(caller, self.clock)
        return retry_incident(self.runtime, context.because(context.why(reason)), incident_id)
