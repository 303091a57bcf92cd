"""JSON in and out: ISO 8601 datetimes, and the JSON shapes of engine objects."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider

from engine.errors import ValidationFailed
from engine.runtime.rows import InstanceRow
from engine.runtime.tasks import Task
from engine.store.models import AuditEvent, Deployment, Incident, Job, ProcessInstance, Role, User


class BadJson(ValidationFailed):
    """The request body is not JSON (or not a JSON object)."""

    code = "bad_json"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


class GmpflowJSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)  # type: ignore[assignment]
    sort_keys = False


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def not_json(constant: str) -> Any:
    """NaN and Infinity are not JSON (Python's parser accepts them; a NaN passes every min/max check)."""
    raise ValueError(f"{constant} is not a JSON value")


def json_body() -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``. Raises BadJson otherwise."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=not_json)
    except (ValueError, RecursionError):
        raise BadJson("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadJson("The request body must be a JSON object.")
    if _has_nul(body):
        raise BadJson("Text in the request body must not contain NUL characters.")
    return body


# -- shapes -----------------------------------------------------------------------------------------------
def definition(dep: Deployment, latest_active_ids: set[int], start_roles: list[str]) -> dict[str, Any]:
    return {"id": dep.id, "key": dep.key, "name": dep.name, "version": dep.version, "status": dep.status,
            "created_at": iso(dep.created_at), "activated_at": iso(dep.activated_at),
            "latest_active": dep.id in latest_active_ids, "start_roles": start_roles}


def instance(row: InstanceRow | ProcessInstance) -> dict[str, Any]:
    return {"id": row.id, "process_key": row.process_key, "version": row.version,
            "business_key": row.business_key, "status": row.status, "status_reason": row.status_reason,
            "initiator": row.initiator, "started_at": iso(row.started_at), "ended_at": iso(row.ended_at)}


def task(row: Task, signatures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A task; ``signatures``: the manifestations of its signatures (all signatures given may be passed)."""
    return {"id": row.id, "instance_id": row.instance_id, "element_id": row.element_id, "name": row.name,
            "lane": row.lane, "candidate_roles": list(row.candidate_roles or []), "assignee": row.assignee,
            "form_id": row.form_id, "instructions": row.instructions,
            "signature_meaning": row.signature_meaning, "state": row.state, "due_at": iso(row.due_at),
            "created_at": iso(row.created_at), "completed_at": iso(row.completed_at),
            "completed_by": row.completed_by, "data": row.data,
            "signatures": [s for s in signatures or [] if s["task_guid"] == row.task_guid]}


def job(row: Job) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "element_id": row.element_id, "operation": row.operation,
            "state": row.state, "due_at": iso(row.due_at), "attempts": row.attempts,
            "max_attempts": row.max_attempts, "last_error": row.last_error}


def incident(row: Incident) -> dict[str, Any]:
    return {"id": row.id, "job_id": row.job_id, "instance_id": row.instance_id, "element_id": row.element_id,
            "error": row.error, "attempts": row.attempts, "created_at": iso(row.created_at),
            "resolved_at": iso(row.resolved_at), "resolved_by": row.resolved_by,
            "resolution_reason": row.resolution_reason}


def audit_event(row: AuditEvent) -> dict[str, Any]:
    return {"seq": row.seq, "at": iso(row.at), "actor_id": row.actor_id, "actor_name": row.actor_name,
            "action": row.action, "object_type": row.object_type, "object_id": row.object_id,
            "object_label": row.object_label, "before": row.before, "after": row.after, "reason": row.reason,
            "correlation_id": row.correlation_id, "prev_hash": row.prev_hash, "hash": row.hash}


def instance_detail(detail: dict[str, Any]) -> dict[str, Any]:
    return {**instance(detail["instance"]), "variables": json.loads(json.dumps(detail["variables"],
                                                                                default=_default)),
            "tasks": [task(t, detail["signatures"]) for t in detail["tasks"]],
            "history": [{"element_id": h["element_id"], "name": h["name"], "type": h["type"],
                         "completed_at": iso(h["completed_at"])} for h in detail["history"]],
            "jobs": [job(j) for j in detail["jobs"]], "incidents": [incident(i) for i in detail["incidents"]],
            "signatures": detail["signatures"]}


def role(row: Role) -> dict[str, Any]:
    return {"name": row.name, "description": row.description}


def user(row: User) -> dict[str, Any]:
    return {"username": row.username, "full_name": row.full_name, "active": row.active, "locked": row.locked,
            "failed_attempts": row.failed_attempts, "must_change_password": row.must_change_password,
            "password_changed_at": iso(row.password_changed_at), "created_at": iso(row.created_at),
            "roles": sorted(row.role_names)}
