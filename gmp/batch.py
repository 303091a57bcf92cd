"""The operations of SOP execution and batch release (``processes/sop_execution``, ``processes/sop_step``,
``processes/batch_release``): the few steps a model cannot do itself because they read master data or
start other instances.

Scale: a batch never loops inside one workflow. ``sop.start_batch`` starts step 1 as its own small
``sop_step`` instance (business key ``<batch>/<number>``); each step instance ends with ``sop.advance``,
which starts the next step instance, or after the last step tells the batch (message
``sop_steps_completed``, correlated on the batch id). Every step therefore costs the same, whatever
its number: no SpiffWorkflow tree grows with the SOP's length.

Like ``gmp.governance`` these operations are bound to one engine (``Gmpflow`` adds ``operations(self)``
to its registry). Each runs as a job outside any transaction and is idempotent: a retried call finds the
instance it started earlier (by business key) and does not start it again.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine import qualifications
from engine.audit import Actor
from engine.errors import EntryRefused, NotFound, ValidationFailed
from engine.masterdata import effective
from engine.operations import CallContext, Operation
from engine.states import TaskState
from engine.store.models import (
    HumanTask,
    MasterDataVersion,
    MessageSubscription,
    ProcessInstance,
)
from gmp import batch_record, equipment_log, product_lots, record_roles

if TYPE_CHECKING:
    from engine.services import Gmpflow

STEP_PROCESS = "sop_step"
STEP_REQUESTED = "sop_step_requested"
STEPS_COMPLETED = "sop_steps_completed"
RUNNABLE = ("effective", "superseded")


def step_key(batch_id: str, number: int) -> str:
    return f"{batch_id}/{number:05d}"


class _Recipes:
    """Recipe versions by id; an effective (or superseded) version never changes, so it is cached."""

    def __init__(self) -> None:
        self._cache: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, engine: Gmpflow, version_id: int) -> dict[str, Any]:
        with self._lock:
            found = self._cache.get(version_id)
        if found is not None:
            return found
        with engine.db.read() as session:
            version = session.get(MasterDataVersion, version_id)
            if version is None or version.record.type_name != "recipe":
                raise NotFound(f"There is no recipe version {version_id}.", code="recipe_version_not_found")
            found = {"id": version.id, "key": version.record.key, "version": version.number,
                     "status": version.status, "content_hash": version.content_hash,
                     "steps": {int(s["number"]): s for s in version.data.get("steps", [])},
                     "numbers": sorted(int(s["number"]) for s in version.data.get("steps", [])),
                     "product": version.data.get("product")}
        with self._lock:
            self._cache[version_id] = found
        return found


def step_definition(step: dict[str, Any]) -> dict[str, Any]:
    """A recipe step as the step instance and its forms use it (``critical``: any critical parameter)."""
    parameters = [{"name": p["name"], "unit": p["unit"], "target": p["target"], "low": p.get("low"),
                   "high": p.get("high"), "critical": bool(p.get("critical"))}
                  for p in step.get("parameters", [])]
    return {"number": int(step["number"]), "instruction": step["instruction"], "parameters": parameters,
            "required_equipment_class": step.get("required_equipment_class"),
            "required_qualification": step.get("required_qualification"),
            "materials": list(step.get("materials", [])),
            "critical": any(p["critical"] for p in parameters)}


def operations(engine: Gmpflow) -> list[Operation]:
    recipes = _Recipes()
    return [
        Operation("sop.start_batch", lambda p, c: start_batch(engine, recipes, p, c), idempotent=True,
                  params_schema={"type": "object", "required": ["batch"],
                                 "properties": {"batch": {"type": "object"}}},
                  description="Pins the batch to the recipe version released with it and starts its first "
                              "step."),
        Operation("sop.advance", lambda p, c: advance(engine, recipes, p, c), idempotent=True,
                  params_schema=ADVANCE_SCHEMA,
                  description="Starts the batch's next step, or after the last step (or a stop) tells the "
                              "batch."),
        Operation("sop.check_entry", lambda p, c: check_entry(engine, p, c), idempotent=True,
                  params_schema={"type": "object", "properties": {
                      "equipment_id": {"type": ["string", "null"]},
                      "batch_id": {"type": ["string", "null"]},
                      "product": {"type": ["string", "null"]},
                      "step_number": {"type": ["integer", "null"]},
                      "required_class": {"type": ["string", "null"]},
                      "required_qualification": {"type": ["string", "null"]},
                      "performer": {"type": ["string", "null"]}}},
                  description="Checks a performed step against the master data and the equipment logbook "
                              "now: the equipment used (required class, status, calibration, in use by "
                              "another batch, clean) and the performer's qualification; accepted, the "
                              "equipment is in use by the batch."),
        Operation("sop.correction_context", lambda p, c: correction_context(engine, p), idempotent=True,
                  params_schema={"type": "object", "required": ["batch_id", "step_number", "parameter"],
                                 "properties": {"batch_id": {"type": "string"},
                                                "step_number": {"type": ["integer", "number"]},
                                                "parameter": {"type": "string"}}},
                  description="The value recorded for a parameter of a batch's step, for a correction: "
                              "{ok, reason, current_value, unit, low, high}."),
        Operation("message.send", lambda p, c: send_message(engine, p, c), idempotent=True,
                  params_schema={"type": "object", "required": ["name", "business_key"],
                                 "properties": {"name": {"type": "string"},
                                                "business_key": {"type": "string"},
                                                "payload": {"type": ["object", "null"]}}},
                  description="Sends a message correlated on a business key (starts or continues an "
                              "instance)."),
        Operation("batch.summary", lambda p, c: batch_summary(engine, p), idempotent=True,
                  params_schema={"type": "object", "required": ["batch_id"],
                                 "properties": {"batch_id": {"type": "string"}}},
                  description="The facts of the batch record (entries per fact, for release_exceptions.dmn), "
                              "the open deviations "
                              "and who performed or verified a step (for the release's four-eyes rule)."),
        Operation("batch.exceptions", lambda p, c: batch_exceptions(engine, p), idempotent=True,
                  params_schema={"type": "object", "required": ["batch_id"],
                                 "properties": {"batch_id": {"type": "string"},
                                                "kinds": {"type": ["array", "null"],
                                                          "items": {"type": "string"}}}},
                  description="The exceptions of the batch record as release_exceptions.dmn decides them now "
                              "(kind, severity, blocking, the rule and why, the evidence), of the given "
                              "kinds "
                              "(all when none are given)."),
        Operation("batch.reopen_context", lambda p, c: reopen_context(engine, p, c), idempotent=True,
                  params_schema={"type": "object", "required": ["batch_id"],
                                 "properties": {"batch_id": {"type": "string"}}},
                  description="Whether a batch may be reopened (its record is locked by a disposition and "
                              "the reopen's business key is the batch): {ok, reason, disposition, batch}."),
        Operation("batch.request_release", lambda p, c: request_release(engine, p, c), idempotent=True,
                  params_schema={"type": "object", "required": ["batch_id", "batch"],
                                 "properties": {"batch_id": {"type": "string"},
                                                "batch": {"type": "object"}}},
                  description="Starts a new batch release of a reopened batch (a new QA disposition), unless "
                              "one is still open."),
        Operation("batch.export_record", lambda p, c: export_record(engine, p), idempotent=True,
                  params_schema={"type": "object", "required": ["batch_id"],
                                 "properties": {"batch_id": {"type": "string"}}},
                  description="Writes the batch record as PDF and JSON to the archive "
                              "(GMPFLOW_ARCHIVE_DIR)."),
    ]


ADVANCE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["batch_id", "number", "recipe_version_id"],
    "properties": {"batch_id": {"type": "string"}, "number": {"type": "integer"},
                   "recipe_version_id": {"type": "integer"}, "stopped": {"type": ["boolean", "null"]},
                   "batch": {"type": ["object", "null"]}}}


def _system(context: CallContext) -> Actor:
    return Actor.system()


def _instance_with_key(engine: Gmpflow, process_key: str, business_key: str) -> int | None:
    with engine.db.read() as session:
        return session.scalar(select(ProcessInstance.id).where(ProcessInstance.business_key == business_key,
                                                               ProcessInstance.process_key == process_key))


def _start_step(engine: Gmpflow, recipes: _Recipes, batch: dict[str, Any], number: int,
                context: CallContext) -> dict[str, Any]:
    recipe = recipes.get(engine, int(batch["recipe_version_id"]))
    key = step_key(str(batch["batch_id"]), number)
    existing = _instance_with_key(engine, STEP_PROCESS, key)
    if existing is None:
        payload = {"batch": batch, "step": step_definition(recipe["steps"][number]),
                   "step_count": len(recipe["numbers"]), "last": number == recipe["numbers"][-1]}
        started = engine.correlate(_system(context), STEP_REQUESTED, {"business_key": key}, payload)
        existing = started.get("instance_id")
    return {"step": number, "instance_id": existing}


def start_batch(engine: Gmpflow, recipes: _Recipes, params: dict[str, Any],
                context: CallContext) -> dict[str, Any]:
    batch = dict(params["batch"])
    missing = [k for k in ("batch_id", "recipe_version_id") if not batch.get(k)]
    if missing:
        raise ValidationFailed("The batch execution request lacks " + ", ".join(missing) + ".",
                               errors={k: "required" for k in missing}, code="batch_request_invalid")
    recipe = recipes.get(engine, int(batch["recipe_version_id"]))
    if recipe["status"] not in RUNNABLE:  # superseded: a newer version came into force after the release
        raise ValidationFailed(f"Recipe {recipe['key']} version {recipe['version']} is {recipe['status']}; "
                               "a batch runs only on a version that was in force.",
                               code="recipe_version_not_in_force")
    if recipe["key"] != batch.get("recipe_key", recipe["key"]):
        raise ValidationFailed(f"Recipe version {recipe['id']} belongs to {recipe['key']}, not "
                               f"{batch.get('recipe_key')}.", code="batch_request_invalid")
    product_lot = product_lots.produce(engine, batch, recipe.get("product") or batch.get("product"))
    first = _start_step(engine, recipes, batch, recipe["numbers"][0], context)
    return {"recipe_key": recipe["key"], "recipe_version": recipe["version"],
            "recipe_version_id": recipe["id"], "recipe_content_hash": recipe["content_hash"],
            "step_count": len(recipe["numbers"]),
            "first_step_instance": first["instance_id"],
            "product_lot": product_lot["lot_id"] if product_lot else None}


def advance(engine: Gmpflow, recipes: _Recipes, params: dict[str, Any],
            context: CallContext) -> dict[str, Any]:
    batch_id, number = str(params["batch_id"]), int(params["number"])
    recipe = recipes.get(engine, int(params["recipe_version_id"]))
    later = [n for n in recipe["numbers"] if n > number]
    if later and not params.get("stopped"):
        batch = dict(params.get("batch") or {"batch_id": batch_id, "recipe_version_id": recipe["id"]})
        return {"next": _start_step(engine, recipes, batch, later[0], context), "completed": False}
    with engine.db.read() as session:  # idempotent: only a batch still waiting is told
        waiting = session.scalar(select(MessageSubscription.id).join(
            ProcessInstance, ProcessInstance.id == MessageSubscription.instance_id).where(
            MessageSubscription.name == STEPS_COMPLETED, ProcessInstance.business_key == batch_id))
    if waiting is not None:
        engine.correlate(_system(context), STEPS_COMPLETED, {"business_key": batch_id},
                         {"last_step": number, "stopped": bool(params.get("stopped"))})
    return {"next": None, "completed": True, "stopped": bool(params.get("stopped"))}


def check_entry(engine: Gmpflow, params: dict[str, Any], context: CallContext, *,
                use_equipment: bool = True) -> dict[str, Any]:
    """{ok, reason, code, equipment, qualification}: every check of a step's entry — the equipment check
    (``gmp.equipment_log.check``), then the qualification of the performer (``params['performer']``, the one
    completing the step; else whoever completed the instance's latest ``perform`` task), a
    ``personnel_qualification`` in force now (``engine.qualifications``). The one function for both the check
    before the signature (``gmp.step_entry``, ``use_equipment=False``: it only reads) and the step's service
    task after it, which marks the accepted equipment in use by the batch. ``code`` names the first failed
    check."""
    result = check_equipment(engine, params)
    result.setdefault("code", None if result["ok"] else "equipment_refused")
    result["qualification"] = None
    skill = params.get("required_qualification")
    now = engine.clock.now()
    if skill and (context.instance_id is not None or params.get("performer")):
        with engine.db.read() as session:
            instance_id = int(context.instance_id or 0)
            performs = record_roles.ids_in_instance(session, engine.specs, instance_id, "perform")
            performer = params.get("performer") or session.scalar(select(HumanTask.completed_by).where(
                HumanTask.instance_id == instance_id, HumanTask.element_id.in_(performs),
                HumanTask.state == TaskState.COMPLETED)
                .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc())
                .limit(1))
            found = qualifications.held(session, str(performer), str(skill), now)
        result["qualification"] = {"person": performer, "qualification": skill, "record": found}
        refusal = qualifications.refusal(str(performer), str(skill), found, now)
        if refusal is not None:
            return {**result, "ok": False, "code": result.get("code") or "qualification_missing",
                    "reason": " ".join(r for r in (result.get("reason"), refusal) if r)}
    if use_equipment and result["ok"] and result["equipment"] is not None:
        try:
            with engine.db.unit_of_work() as session:
                equipment_log.use(session, _system(context), params.get("equipment_id"),
                                  str(params.get("batch_id") or ""), params.get("product"), now,
                                  required_class=params.get("required_class"),
                                  step=params.get("step_number"), instance_id=context.instance_id)
        except EntryRefused as exc:  # taken by another batch since the check
            return {**result, "ok": False, "code": exc.code, "reason": exc.message}
    return result


def check_equipment(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    """{ok, reason, code, equipment}: ``gmp.equipment_log.check`` for the step's batch and product now (the
    record in force, class, status, calibration, occupation, cleanliness)."""
    now = engine.clock.now()
    with engine.db.read() as session:
        try:
            info = equipment_log.check(session, params.get("equipment_id"), str(params.get("batch_id") or ""),
                                       params.get("product"), now,
                                       required_class=params.get("required_class"))
        except EntryRefused as exc:
            equipment_id = (params.get("equipment_id") or "").strip()
            version = (effective.effective_at(session, "equipment", equipment_id, now) if equipment_id
                       else None)
            seen = ({"id": equipment_id} if equipment_id else None) if version is None else {
                "id": equipment_id, "class": version.data.get("class"), "status": version.data.get("status"),
                "calibration_due": version.data.get("calibration_due"), "version": version.number,
                "checked_at": now.astimezone(timezone.utc).isoformat()}
            return {"ok": False, "reason": exc.message, "code": exc.code, "equipment": seen}
    return {"ok": True, "reason": None, "code": None, "equipment": info}


def correction_context(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    record = batch_record.build(engine, str(params["batch_id"]), with_audit_trail=False)
    number, name = int(params["step_number"]), str(params["parameter"])
    step = next((s for s in record["steps"] if s["number"] == number), None)
    if step is None or not step.get("performed"):
        return {"ok": False, "reason": f"Step {number} of batch {record['batch_id']} has not been performed."}
    parameter = next((p for p in step["parameters"] if p["name"] == name), None)
    if parameter is None:
        return {"ok": False, "reason": f"Step {number} has no parameter '{name}'."}
    return {"ok": True, "reason": None, "current_value": parameter["value"], "unit": parameter["unit"],
            "low": parameter["low"], "high": parameter["high"], "step_instance_id": step["instance_id"]}


def send_message(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Idempotent for a message that starts a process: a second call finds the instance it started."""
    name, key = params["name"], params["business_key"]
    with engine.db.read() as session:
        from engine.runtime.messages import message_start_deployments

        starts = message_start_deployments(session, engine.runtime, name)
    if starts:
        existing = _instance_with_key(engine, starts[0].key, key)
        if existing is not None:
            return {"status": "matched", "instance_id": existing, "repeated": True}
    return engine.correlate(_system(context), name, {"business_key": key}, dict(params.get("payload") or {}))


def batch_summary(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    return batch_record.summary(batch_record.build(engine, str(params["batch_id"]), with_audit_trail=False))


def batch_exceptions(engine: Gmpflow, params: dict[str, Any]) -> list[dict[str, Any]]:
    record = batch_record.build(engine, str(params["batch_id"]), with_audit_trail=False)
    kinds = params.get("kinds")
    return [e for e in record["exceptions"] if kinds is None or e["kind"] in kinds]


def export_record(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    return batch_record.export(engine, str(params["batch_id"]))


def utc_now_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def reopen_context(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """A reopen is about the batch of its own business key, and only a locked (released or rejected) one."""
    batch_id = str(params["batch_id"])
    with engine.db.read() as session:
        own_key = session.scalar(select(ProcessInstance.business_key)
                                 .where(ProcessInstance.id == context.instance_id))
    if own_key != batch_id:
        return {"ok": False, "reason": f"The reopen's business key ({own_key}) is not the batch {batch_id}.",
                "disposition": None, "batch": None}
    try:
        record = batch_record.build(engine, batch_id, with_audit_trail=False)
    except NotFound as exc:
        return {"ok": False, "reason": exc.message, "disposition": None, "batch": None}
    disposition = record["disposition"]
    if not disposition["locked"]:
        return {"ok": False, "reason": f"Batch {batch_id} is {disposition['status']}, not locked by a "
                                       "disposition: it can be corrected without a reopen.",
                "disposition": disposition["status"], "batch": None}
    return {"ok": True, "reason": None, "disposition": disposition["status"], "batch": record["order"]}


def request_release(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Idempotent: a retried call finds the release it started (one of the batch still open and not yet
    decided; the release that took the disposition may still be telling ERP and MES)."""
    batch_id = str(params["batch_id"])
    with engine.db.read() as session:
        deciding = record_roles.ids_in_process(session, engine.specs, "batch_release", "disposition")
        decided = select(HumanTask.id).where(HumanTask.instance_id == ProcessInstance.id,
                                             HumanTask.element_id.in_(deciding),
                                             HumanTask.state == TaskState.COMPLETED).exists()
        open_release = session.scalar(select(ProcessInstance.id).where(
            ProcessInstance.process_key == "batch_release", ProcessInstance.business_key == batch_id,
            ProcessInstance.status.in_(("running", "waiting", "failed")), ~decided).limit(1))
    if open_release is not None:
        return {"status": "matched", "instance_id": open_release, "repeated": True}
    return engine.correlate(_system(context), "batch_release_requested", {"business_key": batch_id},
                            {"batch": dict(params["batch"])})
