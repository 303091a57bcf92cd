"""Copies of an instance's record for inspectors (21 CFR 11.10(b), Annex 11 §8): JSON, HTML, PDF.

``build`` gathers the facts once; the HTML copy renders exactly those facts with a Jinja template
(``engine/templates/record.html``) and the PDF copy is that HTML printed by WeasyPrint, so the
copies cannot disagree. Facts: the process, its version and content hash; every completed human
task with who, when and the data entered, and whether a value changed after first entry; the
engine's history of completed steps; every signature with its manifestation; the instance's audit
trail (events on the instance, its tasks, its signatures and its incidents).
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import audit, signatures
from engine.runtime.rows import InstanceRow
from engine.states import TaskState
from engine.store.models import AuditEvent, Deployment, HumanTask, Incident, ProcessInstance, User

TEMPLATES = Path(__file__).parent / "templates"
CORRECTION_ACTION = "task.data_corrected"


def iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def build(session: Session, row: InstanceRow | ProcessInstance, history: list[dict[str, Any]],
          generated_at: datetime) -> dict[str, Any]:
    """The record of one instance as plain JSON values. ``history``: the engine's completed steps."""
    tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == row.id,
                                                    HumanTask.state == TaskState.COMPLETED)
                            .order_by(HumanTask.completed_at, HumanTask.id)).all()
    signed = signatures.signatures_of(session, row.id)
    incident_ids = [str(i) for i in session.scalars(select(Incident.id)
                                                    .where(Incident.instance_id == row.id))]
    all_task_ids = [str(i) for i in session.scalars(select(HumanTask.id)
                                                    .where(HumanTask.instance_id == row.id))]
    events = session.scalars(select(AuditEvent).where(or_(
        (AuditEvent.object_type == "instance") & (AuditEvent.object_id == str(row.id)),
        (AuditEvent.object_type == "task") & AuditEvent.object_id.in_(all_task_ids),
        (AuditEvent.object_type == "signature") & AuditEvent.object_id.in_([str(s.id) for s, _ in signed]),
        (AuditEvent.object_type == "incident") & AuditEvent.object_id.in_(incident_ids),
    )).order_by(AuditEvent.seq)).all()
    corrected = {e.object_id for e in events if e.action == CORRECTION_ACTION}
    names = {username: full_name for username, full_name in session.execute(
        select(User.username, User.full_name).where(
            User.username.in_({t.completed_by for t in tasks if t.completed_by} | {row.initiator})))}
    by_task: dict[str, list[dict[str, Any]]] = {}
    for sig, username in signed:
        by_task.setdefault(sig.task_guid, []).append(signatures.manifestation(sig, username))
    steps = [{"task_id": t.id, "task_guid": t.task_guid, "element_id": t.element_id, "name": t.name,
              "performed_by": t.completed_by, "performed_by_name": names.get(t.completed_by or ""),
              "completed_at": iso(t.completed_at), "data": audit.normalized(t.data or {}),
              "changed_after_entry": str(t.id) in corrected, "signatures": by_task.get(t.task_guid, [])}
             for t in tasks]
    dep = session.get(Deployment, row.deployment_id)
    assert dep is not None  # deployments are never deleted
    return {
        "generated_at": iso(generated_at),
        "process": {"key": dep.key, "name": dep.name, "version": dep.version,
                    "content_hash": dep.content_hash, "deployment_id": dep.id},
        "instance": {"id": row.id, "business_key": row.business_key, "status": row.status,
                     "initiator": row.initiator, "initiator_name": names.get(row.initiator),
                     "started_at": iso(row.started_at), "ended_at": iso(row.ended_at)},
        "steps": steps,
        "history": [{"element_id": h["element_id"], "name": h["name"], "type": h["type"],
                     "completed_at": iso(h["completed_at"])} for h in history],
        "signatures": [signatures.manifestation(s, u) for s, u in signed],
        "changed_after_entry": any(s["changed_after_entry"] for s in steps),
        "audit_trail": [{"seq": e.seq, "at": iso(e.at), "actor_id": e.actor_id, "actor_name": e.actor_name,
                         "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
                         "object_label": e.object_label, "before": e.before, "after": e.after,
                         "reason": e.reason} for e in events],
    }


def template_environment(*folders: Path) -> Any:
    """The Jinja environment of the inspector copies: the engine's (instance record, the copies' style) and
    those of ``folders`` (a pack's record copies, e.g. the batch record), which come first."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader([*folders, TEMPLATES]), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["json"] = audit.canonical_json
    return env


def to_html(record: dict[str, Any]) -> str:
    return str(template_environment().get_template("record.html").render(r=record))


def to_pdf(record: dict[str, Any]) -> bytes:
    """The HTML copy printed to PDF (WeasyPrint; needs the Pango libraries)."""
    with warnings.catch_warnings():  # WeasyPrint 70 warns at import when libharfbuzz-subset is absent
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML

    return bytes(HTML(string=to_html(record)).write_pdf())
