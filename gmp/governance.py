"""The operations the change-control process (``processes/change_control``) calls from its service tasks.

The process is a model; these are the few steps a model cannot do itself because they read or change
governed state: claim the subject of a change request, summarise a master-data change for the DMN,
make an approved version effective, activate an approved deployment.

They need the database, so unlike connector operations they are bound to one engine:
``Gmpflow`` adds ``operations(self)`` to its registry when it is built (see ``Gmpflow.__init__``). Each
call runs as a job outside any transaction and opens its own unit of work, like any other service
call; each is idempotent for the same change-request instance (a job retried after a crash finds its
own earlier work and answers the same).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, sealed
from engine.audit import Actor
from engine.definitions import deployments
from engine.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from engine.masterdata import effective, records, types
from engine.masterdata.diff import diff
from engine.operations import CallContext, Operation
from engine.states import Activation, DeploymentStatus, InstanceStatus, MasterDataStatus
from engine.store.models import Deployment, MasterDataVersion, ProcessInstance

if TYPE_CHECKING:
    from engine.services import Gmpflow

CLAIMED = "change_request.subject_claimed"  # audit action: a change request holds its subject from here on
LIMIT_FIELDS = ("low", "high", "tolerance_percent", "tolerance")
FINISHED = (InstanceStatus.COMPLETED, InstanceStatus.TERMINATED)


def operations(engine: Gmpflow) -> list[Operation]:
    """The change-control operations bound to ``engine``'s database, clock and services."""
    governed = engine.change_control_process
    return [
        Operation("change_request.open", lambda p, c: open_request(engine, p, c), idempotent=True,
                  params_schema=OPEN_SCHEMA, only_in=governed,
                  description="Checks the subject of a change request and claims it for this instance. "
                              "Answers {accepted: false, error: {code, message}} when it cannot be changed "
                              "now; nothing is stored then."),
        Operation("masterdata.diff_summary", lambda p, c: diff_summary(engine, p), idempotent=True,
                  params_schema={"type": "object", "required": ["version_id"], "additionalProperties": False,
                                 "properties": {"version_id": {"type": "integer"}}},
                  description="What a proposed master-data version changes against the one in force: "
                              "{record_type, changes, changed_paths, changes_limits, changes_critical}."),
        Operation("masterdata.make_effective", lambda p, c: make_effective(engine, p, c), idempotent=True,
                  only_in=governed,
                  params_schema={"type": "object", "required": ["version_id"], "additionalProperties": False,
                                 "properties": {"version_id": {"type": "integer"},
                                                "effective_from": {"type": ["string", "null"]}}},
                  description="Makes the approved version effective (now, or from effective_from if that is "
                              "still ahead), superseding the one in force; the instance is the change "
                              "request."),
        Operation("deployment.activate", lambda p, c: activate(engine, p, c), idempotent=True,
                  only_in=governed,
                  params_schema={"type": "object", "required": ["deployment_id"],
                                 "additionalProperties": False,
                                 "properties": {"deployment_id": {"type": "integer"},
                                                "reason": {"type": ["string", "null"]}}},
                  description="Activates the approved process deployment, approved by this instance."),
    ]


OPEN_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["kind"], "additionalProperties": False,
    "properties": {
        "kind": {"enum": ["masterdata", "deployment"]},
        "record_type": {"type": ["string", "null"]},
        "record_key": {"type": ["string", "null"]},
        "version": {"type": ["integer", "null"]},
        "deployment_id": {"type": ["integer", "null"]},
        "effective_date": {"type": ["string", "null"],
                           "description": "ISO date or date-time; empty: at once"},
    },
}


class NotGoverned(PermissionDenied):
    """A governed operation called from outside a governed change control: never retried, an incident."""

    retryable = False


def check_governed(engine: Gmpflow, session: Session, context: CallContext) -> None:
    """Raises ``NotGoverned`` (code ``change_control_required``) unless the calling instance is of the
    change-control process (``engine.change_control_process``) and its own version went live through change
    control or came with ``init`` (a version deployed with change control off counts only while it is off).

    The decision reads the version's provenance from its deployment row (``activated_via``,
    ``approved_by_instance_id``, ``activated_at``) and trusts it only while the row matches its seal
    (``engine.sealed``: the row MAC covers those columns, and the files their content hash), so a row
    inserted or rewritten outside gmpflow does not pass; ``gmpflow audit verify`` names it. Which version an
    instance runs (the caller, the approver) is read from the version its row names, the caller's row
    trusted only while it matches its seal, so an instance moved onto the change control in the database does
    not pass either. The audit trail only records.
    """
    if context.instance_id is None:
        raise NotGoverned("Only a change-control instance may do this.", code="change_control_required")
    dep = session.execute(select(Deployment)
                          .join(ProcessInstance, ProcessInstance.deployment_id == Deployment.id)
                          .where(ProcessInstance.id == context.instance_id)).scalar()
    if dep is None:
        raise NotGoverned("Only a change-control instance may do this.", code="change_control_required")
    if dep.key != engine.change_control_process:
        raise NotGoverned(f"Only an instance of '{engine.change_control_process}' may make a version "
                          f"effective; instance {context.instance_id} is of '{dep.key}'.",
                          code="change_control_required")
    label = f"{dep.key} v{dep.version}"
    # which process the instance runs counts only as gmpflow wrote it: its row names its version (sealed)
    moved = sealed.stored_instance_problem(session, context.instance_id)
    if moved is not None:
        raise NotGoverned(f"Instance {context.instance_id} cannot make anything effective: its row fails its "
                          f"seal ({moved}); `gmpflow audit verify` names the row: restore it from a backup.",
                          code="change_control_required", instance_id=context.instance_id)
    changed = sealed.stored_deployment_problem(session, dep)  # its columns count only as gmpflow wrote them
    if changed is not None:
        raise NotGoverned(f"{label} did not go live through change control nor with init, as far as gmpflow "
                          f"can tell: its deployment row {dep.id} fails its seal ({changed}). Its instances "
                          "cannot make anything effective; `gmpflow audit verify` names the row: restore it "
                          "from a backup.", code="change_control_required", deployment_id=dep.id)
    via = dep.activated_via
    # the approving instance's process, from the version its row names (the sealed deployment's key)
    approver = (session.scalar(select(Deployment.key)
                               .join(ProcessInstance, ProcessInstance.deployment_id == Deployment.id)
                               .where(ProcessInstance.id == dep.approved_by_instance_id))
                if dep.approved_by_instance_id is not None else None)
    if dep.activated_at is not None and (
            via == Activation.INIT
            or (via == Activation.CHANGE_CONTROL and approver == engine.change_control_process)
            or (via == Activation.DIRECT and engine.change_control == "off")):
        return
    why = ("it never went live" if dep.activated_at is None or via is None
           else "it went live directly, with change control off" if via == Activation.DIRECT
           else "its approving instance is not a change control")
    raise NotGoverned(f"{label} did not go live through change control nor with init ({why}); its instances "
                      "cannot make anything effective.", code="change_control_required")


def _actor(context: CallContext) -> Actor:
    return Actor("system", f"gmpflow engine (change request {context.instance_id})")


# -- change_request.open ------------------------------------------------------------------------------------
def open_request(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Claim the subject, or answer why not (``accepted: false``; the model returns to the requester).

    The answer names the subject's ``authors`` from what is stored (a deployment's ``created_by``; a
    master-data version's creator and submitter), never from the request: the model's four-eyes rules
    (``variable:change.authors``) keep them from approving it.
    """
    try:
        effective_from = _effective_from(params.get("effective_date"), engine.clock.now())
        with engine.db.unit_of_work() as session:
            check_governed(engine, session, context)
            if params["kind"] == "deployment":
                subject = _claim_deployment(session, engine, params, context)
            else:
                subject = _claim_version(session, engine, params, context)
    except (NotFound, Conflict, ValidationFailed) as exc:
        return {"accepted": False, "error": {"code": exc.code, "message": exc.message,
                                             **audit.normalized(exc.context)}}
    return {"accepted": True, "error": None, "kind": params["kind"], "effective_from": effective_from,
            **subject}


def _effective_from(value: str | None, now: datetime) -> str:
    """The requested moment as UTC ISO text; a date means its midnight UTC; empty means now."""
    if not value:
        return now.isoformat()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("The effective date is not an ISO date (YYYY-MM-DD) or date-time.",
                               errors={"effective_date": "not an ISO date"},
                               code="effective_date_invalid") from None
    return ((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
            .astimezone(timezone.utc).isoformat())


def _holder(session: Session, instance_id: int | None) -> ProcessInstance | None:
    """The instance holding a claim, unless it has finished (a finished request holds nothing)."""
    row = session.get(ProcessInstance, instance_id) if instance_id is not None else None
    return row if row is not None and row.status not in FINISHED else None


def _claim_version(session: Session, engine: Gmpflow, params: dict[str, Any], context: CallContext
                   ) -> dict[str, Any]:
    type_name, key, number = params.get("record_type"), params.get("record_key"), params.get("version")
    missing = {name: "required" for name, value in (("record_type", type_name), ("record_key", key),
                                                    ("version", number)) if value in (None, "")}
    if missing:
        raise ValidationFailed("Name the record (type and key) and the version to make effective.",
                               errors=missing, code="change_request_incomplete")
    version = records.get_version(session, str(type_name), str(key), int(number or 0), lock=True)
    label = records.label(version.record, version.number)
    if version.status != MasterDataStatus.IN_REVIEW:
        raise Conflict(f"{label} is {version.status}; a change request needs a version submitted for review.",
                       code=f"masterdata_version_{version.status}", current=version.status)
    records.check_references(session, version.record.type_name,
                             records.checked(types.current(session, version.record.type_name),
                                             version.record.key, version.data))
    holder = _holder(session, version.change_request_instance_id)
    if holder is not None and holder.id != context.instance_id:
        raise Conflict(f"{label} is already under change request {holder.id}; it must finish (or be "
                       "terminated) first.", code="change_request_in_progress", instance_id=holder.id)
    if version.change_request_instance_id != context.instance_id:
        version.change_request_instance_id = context.instance_id
        audit.record(session, _actor(context), CLAIMED, "masterdata_record", version.record_id, label,
                     at=engine.clock.now(),
                     after={"version": version.number, "instance_id": context.instance_id})
    # its author and whoever submitted it for review (the last to change its status) may not approve it
    return {"label": label, "record_type": version.record.type_name, "record_key": version.record.key,
            "version": version.number, "version_id": version.id, "deployment_id": None,
            "authors": sorted({version.created_by, version.changed_by}),
            # who owns and who stewards the type (its schema says): the model routes approval and assessment
            **types.stewardship(types.schema_of(types.current(session, version.record.type_name)))}


def _deployment_holder(session: Session, deployment_id: int) -> int | None:
    """The instance that last claimed the deployment (``deployment.change_request_instance_id``; None: never
    claimed). It holds it only while the deployment is ``in_review`` and the instance has not finished."""
    return session.scalar(select(Deployment.change_request_instance_id).where(Deployment.id == deployment_id))


def _claim_deployment(session: Session, engine: Gmpflow, params: dict[str, Any], context: CallContext
                      ) -> dict[str, Any]:
    if params.get("deployment_id") is None:
        raise ValidationFailed("Name the deployment to activate.", errors={"deployment_id": "required"},
                               code="change_request_incomplete")
    dep = session.scalars(select(Deployment).where(Deployment.id == params["deployment_id"])
                          .with_for_update()).first()
    if dep is None:
        raise NotFound(f"There is no deployment {params['deployment_id']}.", code="deployment_not_found")
    label = f"{dep.key} v{dep.version}"
    holder = _holder(session, dep.change_request_instance_id)
    mine = (dep.status == DeploymentStatus.IN_REVIEW and holder is not None
            and holder.id == context.instance_id)
    if not mine:
        if dep.status == DeploymentStatus.IN_REVIEW and holder is not None:
            raise Conflict(f"{label} is already under change request {holder.id}.",
                           code="change_request_in_progress", instance_id=holder.id)
        if dep.status not in (DeploymentStatus.DRAFT, DeploymentStatus.IN_REVIEW):
            raise Conflict(f"{label} is {dep.status}; only a draft deployment can be changed into force.",
                           code=f"deployment_{dep.status}", current=dep.status)
        deployments.hold_for_review(session, dep, context.instance_id)  # a finished holder's is taken over
        if dep.status == DeploymentStatus.DRAFT:
            deployments.set_status(session, engine.clock, _actor(context), dep, DeploymentStatus.IN_REVIEW,
                                   reason=f"change request {context.instance_id}")
        audit.record(session, _actor(context), CLAIMED, "deployment", dep.id, label, at=engine.clock.now(),
                     after={"instance_id": context.instance_id})
    return {"label": label, "record_type": "process_deployment", "record_key": dep.key,
            "version": dep.version, "version_id": None, "deployment_id": dep.id, "authors": [dep.created_by],
            "owner_role": None, "steward_role": None}


# -- masterdata.diff_summary --------------------------------------------------------------------------------
def diff_summary(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    """The proposed version against the one in force now (all of it is new when none is)."""
    with engine.db.read() as session:
        proposed = session.get(MasterDataVersion, params["version_id"])
        if proposed is None:
            raise NotFound(f"There is no master-data version {params['version_id']}.",
                           code="masterdata_version_not_found")
        current = effective.effective_at(session, proposed.record.type_name, proposed.record.key,
                                         engine.clock.now())
        before = current.data if current is not None else {}
        changes = diff(before, proposed.data)
        return {"record_type": proposed.record.type_name, "record_key": proposed.record.key,
                "from_version": current.number if current is not None else None,
                "to_version": proposed.number,
                "changes": changes, "changed_paths": [c["path"] for c in changes],
                "changes_limits": any(c["path"].rsplit("/", 1)[-1] in LIMIT_FIELDS for c in changes),
                "changes_critical": any(_touches_critical(c["path"], before, proposed.data) for c in changes)}


def _touches_critical(path: str, before: Any, after: Any) -> bool:
    """Whether a change lies in (or adds, removes, or flags) an object marked ``critical: true``."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    if parts and parts[-1] == "critical":
        return True
    for data in (before, after):
        node = data
        for part in parts:
            if isinstance(node, dict) and node.get("critical") is True:
                return True
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = None
                break
        if _has_critical(node):
            return True
    return False


def _has_critical(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("critical") is True or any(_has_critical(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_critical(v) for v in node)
    return False


# -- masterdata.make_effective, deployment.activate ----------------------------------------------------------
def make_effective(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """``effective.make_effective`` with this instance as the change request; from ``effective_from`` only
    if that is still ahead (a timer that fired late must not date the change into the past)."""
    now = engine.clock.now()
    requested = datetime.fromisoformat(params["effective_from"]) if params.get("effective_from") else None
    with engine.db.unit_of_work() as session:
        check_governed(engine, session, context)
        version = session.get(MasterDataVersion, params["version_id"])
        if version is None:
            raise NotFound(f"There is no master-data version {params['version_id']}.",
                           code="masterdata_version_not_found")
        if (version.status != MasterDataStatus.EFFECTIVE
                or version.change_request_instance_id != context.instance_id):
            if version.change_request_instance_id != context.instance_id:
                raise Conflict(f"{records.label(version.record, version.number)} is not claimed by change "
                               f"request {context.instance_id}.", code="change_request_not_holder")
            version = effective.make_effective(session, engine.clock, _actor(context), version.id,
                                               requested if requested and requested > now else None,
                                               context.instance_id, change_control=engine.change_control)
        return {"version_id": version.id, "label": records.label(version.record, version.number),
                "status": version.status, "effective_from": version.effective_from}


def activate(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    with engine.db.read() as session:
        check_governed(engine, session, context)
    dep = engine.get_deployment(params["deployment_id"])
    if dep.status != DeploymentStatus.ACTIVE or dep.approved_by_instance_id != context.instance_id:
        with engine.db.read() as session:
            holder = _deployment_holder(session, dep.id)
        if holder != context.instance_id:
            raise Conflict(f"{dep.key} v{dep.version} is not claimed by change request "
                           f"{context.instance_id}.", code="change_request_not_holder")
        reason = params.get("reason") or f"approved by change request {context.instance_id}"
        dep = engine.activate_deployment(_actor(context), dep.id, reason,
                                         approved_by_instance_id=context.instance_id)
    return {"deployment_id": dep.id, "label": f"{dep.key} v{dep.version}", "status": dep.status,
            "approved_by_instance_id": dep.approved_by_instance_id}
