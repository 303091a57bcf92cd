"""The lot a batch produces: received in ``quarantine`` when the batch starts, dispositioned by the batch's
release (``processes/batch_release``), and the genealogy's edge from a batch to what it made.

- ``produce`` (called by ``sop.start_batch``, idempotent) stores the lot ``lot_id_of(batch)`` of the batch's
  product (planned quantity, the product's unit; expiry from the product's ``shelf_life_days``, default
  ``DEFAULT_SHELF_LIFE_DAYS``) with a history event ``produced`` naming the batch.
- ``lot.set_batch_disposition`` is the release model's service task after QA's signed decision, callable from
  ``batch_release`` only (``only_in``) and only for the batch of the instance's own business key: the product
  lot follows the batch's latest signed disposition (released, rejected, quarantined → ``quarantine``), so a
  release after a governed reopen can take it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine import audit
from engine.audit import Actor
from engine.errors import NotFound, PermissionDenied
from engine.masterdata import effective
from engine.operations import CallContext, Operation
from engine.states import TaskState
from engine.store.models import HumanTask, ProcessInstance, User
from gmp import lots, record_roles
from gmp.states import LotStatus
from gmp.tables import Lot, LotEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from engine.runtime.specs import SpecCache
    from engine.services import Gmpflow

RELEASE_PROCESS = "batch_release"
DEFAULT_SHELF_LIFE_DAYS = 730
DISPOSITIONS = {"released": LotStatus.RELEASED, "rejected": LotStatus.REJECTED,
                "quarantined": LotStatus.QUARANTINE}


def lot_id_of(batch_id: str) -> str:
    """The product lot of a batch: a different id than the batch's, so a genealogy edge names one node."""
    return f"L-{batch_id}"


def produced_by(session: Session, lot_id: str) -> str | None:
    """The batch that produced the lot, or None (a received lot)."""
    return session.scalar(select(LotEvent.batch_id).where(LotEvent.lot_id == lot_id,
                                                          LotEvent.kind == "produced").limit(1))


def of_batch(session: Session, batch_id: str) -> dict[str, Any] | None:
    """The batch's product lot as stored (its status as dispositioned, not read against a date), or None."""
    lot = session.get(Lot, lot_id_of(batch_id))
    if lot is None:
        return None
    return {"lot_id": lot.lot_id, "material": lot.material, "quantity": lot.quantity, "uom": lot.uom,
            "expiry": lot.expiry, "status": lot.status}


def produce(engine: Gmpflow, batch: dict[str, Any], product: str | None) -> dict[str, Any] | None:
    """Store the batch's product lot in quarantine (once: a retried job finds it); None without a product."""
    if not product:
        return None
    batch_id, now = str(batch["batch_id"]), engine.clock.now()
    lot_id = lot_id_of(batch_id)
    with engine.db.unit_of_work() as session:
        if session.get(Lot, lot_id) is not None:
            return {"lot_id": lot_id, "repeated": True}
        record = effective.effective_at(session, "product", product, now)
        data = dict(record.data) if record is not None else {}
        days = int(data.get("shelf_life_days") or DEFAULT_SHELF_LIFE_DAYS)
        fields = {"lot_id": lot_id, "material": product, "quantity": float(batch.get("quantity") or 0),
                  "uom": str(data.get("unit") or "pcs"), "retest": None, "supplier_lot": None,
                  "expiry": (now.astimezone(timezone.utc).date() + timedelta(days=days)).isoformat()}
        actor = Actor.system()
        lots.insert(session, actor, fields, now, reason=f"produced by batch {batch_id}")
        session.add(LotEvent(lot_id=lot_id, kind="produced", at=now, actor_id=actor.id, actor_name=actor.name,
                             quantity=fields["quantity"], uom=fields["uom"], batch_id=batch_id))
        return {"lot_id": lot_id, "repeated": False}


def operations(engine: Gmpflow) -> list[Operation]:
    return [Operation(
        "lot.set_batch_disposition", lambda p, c: set_batch_disposition(engine, p, c), idempotent=True,
        only_in=RELEASE_PROCESS,
        params_schema={"type": "object", "required": ["batch_id", "disposition"],
                       "additionalProperties": False,
                       "properties": {"batch_id": {"type": "string"},
                                      "disposition": {"enum": list(DISPOSITIONS)},
                                      "reason": {"type": ["string", "null"]}}},
        description="Gives the batch's product lot the disposition QA signed in this release (released, "
                    "rejected, quarantined); answers {lot_id, status}.")]


def _decider(session: Session, specs: SpecCache, instance_id: int) -> Actor:
    found = session.execute(select(HumanTask.completed_by, User.full_name).join(
        User, User.username == HumanTask.completed_by).where(
        HumanTask.instance_id == instance_id,
        HumanTask.element_id.in_(record_roles.ids_in_instance(session, specs, instance_id, "disposition")),
        HumanTask.state == TaskState.COMPLETED).order_by(HumanTask.id.desc()).limit(1)).first()
    return Actor(str(found[0]), str(found[1])) if found else Actor.system()


def set_batch_disposition(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    batch_id, target = str(params["batch_id"]), DISPOSITIONS[params["disposition"]]
    now: datetime = engine.clock.now()
    with engine.db.unit_of_work() as session:
        own_key = session.scalar(select(ProcessInstance.business_key)
                                 .where(ProcessInstance.id == context.instance_id))
        if own_key != batch_id:
            raise PermissionDenied(f"A release dispositions the product lot of its own batch ({own_key}), "
                                   f"not of {batch_id}.", code="not_permitted")
        lot = session.scalar(select(Lot).where(Lot.lot_id == lot_id_of(batch_id)).with_for_update())
        if lot is None:
            raise NotFound(f"Batch {batch_id} has no product lot.", code="lot_unknown")
        if lot.status == target:
            return {"lot_id": lot.lot_id, "status": lot.status, "repeated": True}
        actor = _decider(session, engine.specs, int(context.instance_id or 0))
        before, lot.status = lot.status, target.value
        session.add(LotEvent(lot_id=lot.lot_id, kind="status", at=now, actor_id=actor.id,
                             actor_name=actor.name,
                             from_status=before, to_status=target.value, instance_id=context.instance_id,
                             batch_id=batch_id, reason=params.get("reason")))
        audit.record(session, actor, "lot.status_changed", "lot", lot.lot_id,
                     f"lot {lot.lot_id} ({lot.material})", at=now, before={"status": before},
                     after={"status": target.value, "instance_id": context.instance_id,
                            "batch_id": batch_id},
                     reason=params.get("reason"))
        return {"lot_id": lot.lot_id, "status": target.value}
