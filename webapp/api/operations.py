"""Messages, incidents, the audit trail and signatures."""

from __future__ import annotations

from typing import Any

from engine.access import AUDIT_READERS, RECORD_READERS
from webapp import jsonio
from webapp.api import api, body
from webapp.api.auth import engine, principal, require_roles
from webapp.api.openapi import operation
from webapp.api.queries import Flag, Query, moment, paging, query_args, text, whole
from webapp.api.schemas import listing, ref
from webapp.request_context import request_context


class IncidentFilters(Query):
    open = Flag(load_default=True, metadata={"description": "only unresolved incidents (default true)"})


class AuditFilters(Query):
    object_type, object_id, actor, action = text(50), text(100), text(100), text(100)
    correlation_id = text(100, description="the events of one request: the `X-Request-Id` of its response")
    after, before = moment(description="inclusive"), moment(description="exclusive")
    limit, offset = paging()


class SignatureFilters(Query):
    instance_id = whole()


@api.post("/messages")
@operation("Deliver a message to the instance waiting for it (or keep it until ttl_seconds)",
           tags=["messages"], body="MessageRequest", response=ref("MessageResult"))
def send_message() -> Any:
    data = body()
    return engine().correlate(request_context(), data["name"], data.get("correlation_keys"),
                              data.get("payload"), data.get("ttl_seconds"))


@api.get("/incidents")
@operation("Incidents, newest first", tags=["incidents"], response=listing("Incident"),
           query=IncidentFilters)
@require_roles(*sorted(RECORD_READERS))
def list_incidents() -> Any:
    return [jsonio.incident(i) for i in engine().list_incidents(open_only=query_args()["open"])]


@api.post("/incidents/<id:incident_id>/retry")
@operation("Retry the failed job of an incident (admin; reason required)", tags=["incidents"],
           body="ReasonRequest", response=ref("Incident"))
@require_roles("admin")
def retry_incident(incident_id: int) -> Any:
    return jsonio.incident(engine().retry_incident(request_context(str(body()["reason"])), incident_id))


@api.get("/audit")
@operation("Audit events in chain order", tags=["audit"], response=listing("AuditEvent"),
           query=AuditFilters)
@require_roles(*sorted(AUDIT_READERS))
def list_audit() -> Any:
    return [jsonio.audit_event(e) for e in engine().audit_events(**query_args())]


@api.get("/audit/verify")
@operation("Verify the keyed audit chain, its anchors, every signature's record hash and binding and every "
           "sealed row (admin or qa)",
           tags=["audit"], response=ref("AuditReport"),
           description="`first_broken` is the first broken sequence number of the chain (also for a tail "
                       "cut or a head replaced after a checkpoint in the anchor file); a signature that "
                       "fails (edited, moved to another record, its data changed, deleted) is named in "
                       "`reason` as `signature <id>: why`; a row changed outside gmpflow (instance state, "
                       "task data, role grant, deployment status, printed name) by `table` and `row_id`.")
@require_roles(*sorted(AUDIT_READERS))
def verify_audit() -> Any:
    return engine().verify_audit().to_dict()


@api.get("/signatures")
@operation("Electronic signatures with their manifestation (printed name, UTC date-time with zone, meaning), "
           "oldest first", tags=["signatures"], response=listing("Signature"),
           query=SignatureFilters,
           description=f"The roles {', '.join(sorted(RECORD_READERS))} read every signature; a participant "
                       "of an instance reads its signatures with `instance_id`; anyone else: 403 "
                       "`not_permitted`.")
def list_signatures() -> Any:
    return engine().list_signatures(**query_args(), reader=principal())
