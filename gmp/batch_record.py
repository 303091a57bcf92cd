"""The electronic batch record: one batch's facts gathered from its instances, as JSON, HTML and PDF.

The batch (``sop_execution``, business key = batch id) keeps no per-step state; each SOP step ran as
its own ``sop_step`` instance (business key ``<batch>/<number>``), so the record is read from the
stored indexes of those instances, never from a workflow state: the completed human tasks (what was
entered, by whom, when), the signatures (manifestations), the equipment checks (job results in the
audit trail), the incidents, and the batch release instance's deviation closures and decision.

Exceptions (review by exception): the record's facts are gathered by ``gmp.batch_exceptions``; which
of them are exceptions, of which kind and how severe, is decided by the model
(``processes/batch_release/release_exceptions.dmn``). How late a step's signature may come is SOP master
data (``late_signature_hours``), so the record of a batch applies the rule of the SOP version the batch
ran on.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import audit, signatures
from engine.errors import NotFound
from engine.states import TaskState
from engine.store.models import (
    AuditEvent,
    HumanTask,
    Incident,
    Job,
    MasterDataType,
    MasterDataVersion,
    ProcessInstance,
    Signature,
    User,
)
from gmp import batch_disposition, batch_exceptions, batch_flags, batch_yield, product_lots
from gmp.record_roles import RoleIndex
from gmp.tables import EquipmentLogEntry

if TYPE_CHECKING:
    from engine.runtime.instances import InstanceRuntime
    from engine.services import Gmpflow

TEMPLATES = Path(__file__).parent / "templates"  # the batch record's copy (with the engine's copy style)
STEP_ROLES = ("perform", "out_of_limit", "verify")  # whoever played these took part in the batch


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _outside(value: Any, low: Any, high: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return (low is not None and value < low) or (high is not None and value > high)


def _started_payload(session: Session, instance_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The message payload each instance was started with (from its ``message.started_instance`` event)."""
    found: dict[int, dict[str, Any]] = {}
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "message.started_instance", AuditEvent.object_type == "instance",
            AuditEvent.object_id.in_([str(i) for i in instance_ids]))):
        found[int(event.object_id)] = dict((event.after or {}).get("payload") or {})
    return found


def late_signature_hours(session: Session, recipe: MasterDataVersion | None) -> float | None:
    """How many hours after a step opened its signature may come: the SOP version's ``late_signature_hours``,
    else the default declared by the recipe schema that version was checked against
    (``masterdata/recipe.schema.json``). None: neither says, no step counts as signed late."""
    if recipe is None:
        return None
    if recipe.data.get("late_signature_hours") is not None:
        return float(recipe.data["late_signature_hours"])
    schema = json.loads(session.get_one(MasterDataType, recipe.type_id).schema_text)
    default = schema.get("properties", {}).get("late_signature_hours", {}).get("default")
    return float(default) if default is not None else None


def _job_results(session: Session, instance_ids: list[int], element_id: str) -> dict[int, list[Any]]:
    jobs = {j.id: int(j.instance_id or 0) for j in session.scalars(select(Job).where(
        Job.instance_id.in_(instance_ids), Job.element_id == element_id, Job.kind == "service"))}
    results: dict[int, list[Any]] = {}
    if not jobs:
        return results
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "job.completed", AuditEvent.object_type == "job",
            AuditEvent.object_id.in_([str(j) for j in jobs])).order_by(AuditEvent.seq)):
        results.setdefault(jobs[int(event.object_id)], []).append((event.after or {}).get("result"))
    return results


def build(engine: Gmpflow, batch_id: str, *, with_audit_trail: bool = True) -> dict[str, Any]:
    """The record with its ``sha256`` (see ``gmp.batch_disposition`` for what it is computed over)."""
    with engine.db.read() as session:
        return batch_disposition.with_hash(_build(session, engine.clock.now(), batch_id, with_audit_trail,
                                                  engine.runtime))


def facts(session: Session, batch_id: str, runtime: InstanceRuntime) -> dict[str, Any]:
    """What the record's ``sha256`` is computed over, read in the caller's session (a signing transaction)."""
    return batch_disposition.facts_of(_build(session, None, batch_id, False, runtime))


def _build(session: Session, now: datetime | None, batch_id: str, with_audit_trail: bool,
           runtime: InstanceRuntime) -> dict[str, Any]:
    batch_row = session.scalar(select(ProcessInstance).where(ProcessInstance.process_key == "sop_execution",
                                                             ProcessInstance.business_key == batch_id)
                               .order_by(ProcessInstance.id.desc()).limit(1))
    if batch_row is None:
        raise NotFound(f"There is no batch {batch_id}.", code="batch_not_found")
    # '_' is no wildcard
    of_this_batch = ProcessInstance.business_key.startswith(f"{batch_id}/", autoescape=True)
    step_rows = list(session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key == "sop_step", of_this_batch).order_by(ProcessInstance.business_key)))
    release_rows = list(session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key == "batch_release", ProcessInstance.business_key == batch_id)
        .order_by(ProcessInstance.id)))
    correction_rows = list(session.scalars(select(ProcessInstance).where(
        ProcessInstance.process_key == "sop_correction", ProcessInstance.business_key == batch_id)
        .order_by(ProcessInstance.id)))
    reopen_rows = batch_disposition.reopen_rows(session, batch_id)
    all_ids = [batch_row.id, *[r.id for r in step_rows], *[r.id for r in release_rows],
               *[r.id for r in correction_rows], *[r.id for r in reopen_rows]]
    order = _started_payload(session, [batch_row.id]).get(batch_row.id, {})
    recipe_version = session.get(MasterDataVersion, int(order["recipe_version_id"])) \
        if order.get("recipe_version_id") else None
    recipe_steps = {int(s["number"]): s
                    for s in (recipe_version.data.get("steps", []) if recipe_version else [])}
    late_hours = late_signature_hours(session, recipe_version)
    roles = RoleIndex(session, runtime.specs, [batch_row, *step_rows, *release_rows, *correction_rows,
                                               *reopen_rows])  # which task is which: record.role

    tasks: dict[int, list[HumanTask]] = {}
    for task in session.scalars(select(HumanTask).where(HumanTask.instance_id.in_(all_ids),
                                                        HumanTask.state == TaskState.COMPLETED)
                                .order_by(HumanTask.completed_at, HumanTask.id)):
        tasks.setdefault(int(task.instance_id), []).append(task)
    signed: dict[str, list[dict[str, Any]]] = {}
    for sig, username in session.execute(select(Signature, User.username)
                                         .join(User, User.id == Signature.user_id)
                                         .where(Signature.instance_id.in_(all_ids)).order_by(Signature.id)):
        signed.setdefault(sig.task_guid, []).append(signatures.manifestation(sig, username))
    names = dict(session.execute(select(User.username, User.full_name)).all())
    checks = _job_results(session, [r.id for r in step_rows], "check_equipment")
    refusals = _refused_attempts(session, [r.id for r in step_rows])
    incidents = list(session.scalars(select(Incident).where(Incident.instance_id.in_(all_ids))
                                     .order_by(Incident.id)))

    closures: dict[str, dict[str, Any]] = {}
    decision: dict[str, Any] | None = None
    reviews: list[dict[str, Any]] = []
    for release in release_rows:
        for task in tasks.get(release.id, []):
            entry = _task_entry(task, names, signed)
            data = task.data or {}
            if (roles.of(task) == "deviation_closure" and data.get("closure") == "close"
                    and data.get("deviation_id")):
                closures[str(data["deviation_id"])] = {**entry, "root_cause": data.get("root_cause"),
                                                      "capa_ref": data.get("capa_ref"),
                                                      "capa_status": data.get("capa_status")}
            elif roles.of(task) == "disposition":
                decision = {**entry, "disposition": data.get("disposition"),
                            "reason": data.get("decision_reason")}
            elif roles.of(task) == "review":
                reviews.append(entry)

    # approved corrections requested after the step, by step number
    later: dict[int, list[dict[str, Any]]] = {}
    for row in correction_rows:
        done = tasks.get(row.id, [])
        requested, approved = roles.last(done, "correction_request"), roles.last(done, "correction_approval")
        if (requested is None or approved is None
                or (approved.data or {}).get("correction_decision") != "approve"):
            continue
        data = requested.data or {}
        later.setdefault(int(data.get("step_number") or 0), []).append({
            "name": data.get("parameter"), "new_value": data.get("new_value"),
            "reason": data.get("correction_reason"),
            **_task_entry(requested, names, signed), "instance_id": row.id,
            "approved": _task_entry(approved, names, signed)})
    steps: list[dict[str, Any]] = []
    deviations: list[dict[str, Any]] = []
    participants: set[str] = set()
    consumed: dict[str, float] = {}
    consumed_lots: dict[str, dict[str, float]] = {}  # material → lot → quantity
    for row in step_rows:
        number = int(str(row.business_key).rsplit("/", 1)[1])
        step = _step(row, number, recipe_steps.get(number, {}), tasks.get(row.id, []), names, signed,
                     checks.get(row.id, []), later.get(number, []), late_hours, roles)
        step["refused_attempts"] = refusals.get(row.id, [])
        steps.append(step)
        participants |= {t["by"] for t in step["_participants"]}
        step.pop("_participants")
        for material in step["materials_used"]:
            key = str(material.get("material"))
            if isinstance(material.get("quantity"), (int, float)):
                consumed[key] = consumed.get(key, 0) + material["quantity"]
                if material.get("lot"):
                    lots = consumed_lots.setdefault(key, {})
                    lots[str(material["lot"])] = lots.get(str(material["lot"]), 0) + material["quantity"]
        if step["deviation"]:
            dev = step["deviation"]
            dev["closure"] = closures.get(dev["id"])
            dev["state"] = "closed" if dev["closure"] else ("assessed" if dev.get("assessment") else "open")
            deviations.append(dev)
    instance_names = {batch_row.id: "sop_execution", **{r.id: r.business_key for r in step_rows},
                      **{r.id: "batch_release" for r in release_rows}}
    incident_list = [{"id": i.id, "instance_id": i.instance_id,
                      "where": instance_names.get(i.instance_id or 0),
                      "element_id": i.element_id, "error": i.error, "created_at": iso(i.created_at),
                      "resolved_at": iso(i.resolved_at), "resolved_by": i.resolved_by,
                      "resolution_reason": i.resolution_reason} for i in incidents]
    yield_task = roles.last(tasks.get(batch_row.id, []), "yield")
    if yield_task is not None and yield_task.completed_by:
        participants.add(yield_task.completed_by)
    calculated = batch_yield.calculate(session, batch_id, recipe_version, order,
                                       yield_task.data if yield_task is not None else None)
    record: dict[str, Any] = {
        "batch_id": batch_id,
        "generated_at": iso(now),
        "order": order,
        "sop": {"key": recipe_version.record.key if recipe_version else order.get("recipe_key"),
                "version": recipe_version.number if recipe_version else order.get("recipe_version"),
                "version_id": recipe_version.id if recipe_version else order.get("recipe_version_id"),
                "content_hash": recipe_version.content_hash if recipe_version else None,
                "step_count": len(recipe_steps), "late_signature_hours": late_hours},
        "execution": {"instance_id": batch_row.id, "status": batch_row.status,
                      "started_at": iso(batch_row.started_at), "ended_at": iso(batch_row.ended_at),
                      "produced_quantity": ((yield_task.data or {}).get("produced_quantity")
                                            if yield_task else None),
                      "yield_recorded_by": _task_entry(yield_task, names, signed) if yield_task else None},
        "steps": steps,
        "deviations": deviations,
        "corrections": [{**c, "step": s["number"]} for s in steps for c in s["corrections"]],
        "consumed": [{"product": k, "quantity": round(v, 6),
                      "lots": [{"lot": lot, "quantity": round(q, 6)}
                               for lot, q in sorted(consumed_lots.get(k, {}).items())]}
                     for k, v in sorted(consumed.items())],
        "yield": {**calculated["yield"],
                  "comment": (yield_task.data or {}).get("yield_comment") if yield_task else None},
        "reconciliation": calculated["reconciliation"],
        "product_lot": product_lots.of_batch(session, batch_id),
        "equipment": _equipment_entries(session, batch_id),
        "flagged": batch_flags.flagged(session, runtime, [*all_ids, *batch_flags.order_instance_ids(
            session, order.get("order_id"))], names),  # tasks the models flag (exception.fact)
        "incidents": incident_list,
        "participants": sorted(p for p in participants if p),
        "release": {"instance_ids": [r.id for r in release_rows], "reviews": reviews, "decision": decision},
        "disposition": batch_disposition.history(session, batch_id, release_rows, reopen_rows, tasks,
                                                 lambda t: _task_entry(t, names, signed), names, roles.of),
    }
    found = batch_exceptions.evidence(record)
    record["facts"] = batch_exceptions.counts(found)
    record["exceptions"] = batch_exceptions.decide(session, runtime, batch_id, found)
    if with_audit_trail:
        record["audit_trail"] = _audit_trail(session, all_ids)
    return record


def _equipment_entries(session: Session, batch_id: str) -> list[dict[str, Any]]:
    """The equipment logbook's lines of this batch: in use (from which step), released dirty at its end."""
    return [{"equipment_id": e.equipment_id, "kind": e.kind, "at": iso(e.at), "step": e.step,
             "product": e.product, "note": e.note}
            for e in session.scalars(select(EquipmentLogEntry).where(EquipmentLogEntry.batch_id == batch_id)
                                     .order_by(EquipmentLogEntry.id))]


def _refused_attempts(session: Session, instance_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The completions an entry check refused before signing (``task.entry_refused`` events), by instance:
    when, by whom, the reason's code and message, what was entered."""
    task_ids = [str(i) for i in session.scalars(select(HumanTask.id)
                                                .where(HumanTask.instance_id.in_(instance_ids)))]
    found: dict[int, list[dict[str, Any]]] = {}
    if not task_ids:
        return found
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "task.entry_refused", AuditEvent.object_type == "task",
            AuditEvent.object_id.in_(task_ids)).order_by(AuditEvent.seq)):
        after = dict(event.after or {})
        found.setdefault(int(after.get("instance_id") or 0), []).append({
            "at": iso(event.at), "by": event.actor_id, "by_name": event.actor_name,
            "task": after.get("element_id"), "code": after.get("code"), "message": event.reason,
            "errors": after.get("errors") or {}, "data": after.get("data") or {}})
    return found


def _task_entry(task: HumanTask, names: dict[str, str],
                signed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"task_id": task.id, "by": task.completed_by, "by_name": names.get(task.completed_by or ""),
            "at": iso(task.completed_at), "opened_at": iso(task.created_at),
            "signatures": signed.get(task.task_guid, [])}


def _step(row: ProcessInstance, number: int, definition: dict[str, Any], tasks: list[HumanTask],
          names: dict[str, str], signed: dict[str, list[dict[str, Any]]], checks: list[Any],
          later: list[dict[str, Any]], late_hours: float | None, roles: RoleIndex) -> dict[str, Any]:
    performs = roles.every(tasks, "perform")
    last = performs[-1] if performs else None
    entered = {v.get("name"): v.get("value") for v in ((last.data or {}).get("values") or [])} if last else {}
    first_entry = dict(entered)
    corrections, deviation, participants = [], None, []
    for task in tasks:
        if roles.of(task) in STEP_ROLES:
            participants.append({"by": task.completed_by})
    for task in roles.every(tasks, "out_of_limit"):
        data = task.data or {}
        entry = _task_entry(task, names, signed)
        if data.get("out_of_limit_action") == "correct":
            for c in data.get("corrected_values") or []:
                if c.get("name") in entered:
                    corrections.append({"name": c["name"], "old_value": entered[c["name"]],
                                        "new_value": c.get("value"), "reason": data.get("correction_reason"),
                                        **entry})
                    entered[c["name"]] = c.get("value")
        elif data.get("out_of_limit_action") == "confirm":
            deviation = {"id": f"DEV-{row.business_key}", "step": number, "instance_id": row.id,
                         "description": data.get("deviation_description"),
                         "immediate_action": data.get("immediate_action"), "opened": entry,
                         "assessment": None, "hold": None}
    for correction in later:  # corrections of the recorded value, requested and approved afterwards
        participants.append({"by": correction["by"]})
        if correction["name"] in entered:
            corrections.append({**correction, "old_value": entered[correction["name"]]})
            entered[correction["name"]] = correction["new_value"]
    assess = roles.last(tasks, "deviation_assessment")
    if deviation is not None and assess is not None:
        deviation["assessment"] = {**_task_entry(assess, names, signed),
                                   "classification": (assess.data or {}).get("classification"),
                                   "decision": (assess.data or {}).get("assessment_decision"),
                                   "comment": (assess.data or {}).get("assessment_comment")}
    hold = roles.last(tasks, "hold_decision")
    if deviation is not None and hold is not None:
        deviation["hold"] = {**_task_entry(hold, names, signed),
                             "decision": (hold.data or {}).get("hold_decision")}
    parameters = []
    for p in definition.get("parameters", []):
        value = entered.get(p["name"])
        parameters.append({"name": p["name"], "unit": p["unit"], "target": p["target"], "low": p.get("low"),
                           "high": p.get("high"), "critical": bool(p.get("critical")), "value": value,
                           "first_entry": first_entry.get(p["name"]),
                           "out_of_limit": _outside(value, p.get("low"), p.get("high"))})
    verify = roles.last(tasks, "verify")
    performed = _task_entry(last, names, signed) if last else None
    delay_hours, signed_late = None, False
    if last is not None and last.created_at and last.completed_at:
        delay = last.completed_at - last.created_at
        delay_hours = round(delay.total_seconds() / 3600, 2)
        signed_late = late_hours is not None and delay > timedelta(hours=late_hours)
    equipment, qualification = None, None
    refusals = [{"equipment_id": (r.get("equipment") or {}).get("id"), "code": r.get("code"),
                 "reason": r.get("reason")} for r in checks
                if isinstance(r, dict) and not r.get("ok")
                and str(r.get("code") or "").startswith("equipment_")]
    last_check = next((r for r in reversed(checks) if isinstance(r, dict)), None)
    if last_check is not None:
        if last_check.get("equipment"):
            equipment = {**last_check["equipment"], "accepted": bool(last_check.get("ok")),
                         "refusal": last_check.get("reason")}
        qualification = last_check.get("qualification")
    return {"number": number, "instance_id": row.id, "status": row.status,
            "instruction": definition.get("instruction"),
            "required_equipment_class": definition.get("required_equipment_class"),
            "required_qualification": definition.get("required_qualification"),
            "critical": any(p["critical"] for p in parameters),
            "parameters": parameters,
            "equipment_id": (last.data or {}).get("equipment_id") if last else None,
            "equipment": equipment, "qualification": qualification, "equipment_refusals": refusals,
            "materials_planned": definition.get("materials", []),
            "materials_used": list((last.data or {}).get("materials_used") or []) if last else [],
            "performed": performed, "attempts": len(performs),
            "verified": _task_entry(verify, names, signed) if verify else None,
            "corrections": corrections, "deviation": deviation, "signing_delay_hours": delay_hours,
            "signed_late": signed_late,
            "_participants": participants}


def _audit_trail(session: Session, instance_ids: list[int]) -> list[dict[str, Any]]:
    task_ids = [str(i) for i in session.scalars(select(HumanTask.id)
                                                .where(HumanTask.instance_id.in_(instance_ids)))]
    sig_ids = [str(i) for i in session.scalars(select(Signature.id)
                                               .where(Signature.instance_id.in_(instance_ids)))]
    inc_ids = [str(i) for i in session.scalars(select(Incident.id)
                                               .where(Incident.instance_id.in_(instance_ids)))]
    events = session.scalars(select(AuditEvent).where(or_(
        (AuditEvent.object_type == "instance") & AuditEvent.object_id.in_([str(i) for i in instance_ids]),
        (AuditEvent.object_type == "task") & AuditEvent.object_id.in_(task_ids),
        (AuditEvent.object_type == "signature") & AuditEvent.object_id.in_(sig_ids),
        (AuditEvent.object_type == "incident") & AuditEvent.object_id.in_(inc_ids),
    )).order_by(AuditEvent.seq))
    return [{"seq": e.seq, "at": iso(e.at), "actor_id": e.actor_id, "actor_name": e.actor_name,
             "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
             "object_label": e.object_label,
             "before": e.before, "after": e.after, "reason": e.reason} for e in events]


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What the release process decides on: the facts (entries per fact, read by release_exceptions.dmn),
    the deviations not closed, who took part (performed, verified, confirmed a value, recorded the yield);
    and what the production reports need: what was consumed, when the batch started and when its last
    step was performed."""
    return {"batch_id": record["batch_id"], "facts": record["facts"],
            "open_deviations": [{"id": d["id"], "step": d["step"], "description": d["description"],
                                 "classification": (d.get("assessment") or {}).get("classification"),
                                 "state": d["state"]}
                                for d in record["deviations"] if d["state"] != "closed"],
            "participants": record["participants"], "consumed": record["consumed"],
            "started_at": record["execution"]["started_at"],
            "ended_at": max((s["performed"]["at"] for s in record["steps"] if s.get("performed")),
                            default=None),
            "step_count": len(record["steps"]), "sop": record["sop"]}


# -- copies -------------------------------------------------------------------------------------------------
def to_html(record: dict[str, Any]) -> str:
    from engine.records import template_environment

    return str(template_environment(TEMPLATES).get_template("batch_record.html").render(r=record))


def to_pdf(record: dict[str, Any]) -> bytes:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML

    return bytes(HTML(string=to_html(record)).write_pdf())


def file_name(batch_id: str, extension: str) -> str:
    """``<batch>-batch-record.<extension>``, with every character but ASCII letters, digits, '-', '_' and
    '.' replaced, so that it is safe as a file name and in a Content-Disposition header."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in batch_id)
    return f"{safe}-batch-record.{extension}"


def export(engine: Gmpflow, batch_id: str) -> dict[str, Any]:
    """The batch record as JSON and PDF in the archive folder; the same facts in both (one ``build``)."""
    record = build(engine, batch_id)
    folder = engine.config.archive_dir  # GMPFLOW_ARCHIVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    json_bytes = json.dumps(audit.normalized(record), indent=1, sort_keys=True, ensure_ascii=False).encode()
    pdf_bytes = to_pdf(record)
    json_path, pdf_path = folder / file_name(batch_id, "json"), folder / file_name(batch_id, "pdf")
    json_path.write_bytes(json_bytes)
    pdf_path.write_bytes(pdf_bytes)
    return {"json": str(json_path), "pdf": str(pdf_path),
            "json_sha256": hashlib.sha256(json_bytes).hexdigest(),
            "pdf_sha256": hashlib.sha256(pdf_bytes).hexdigest()}
