"""Which version is in force: making a version effective (only for change control) and reading the
version effective at a moment.

A version is in force over ``[effective_from, effective_until)``. Making one effective closes the
interval of the one it supersedes at the same instant, in the same transaction, so at any moment at
most one version of a record is in force and the answer for a past moment never changes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.audit import Actor
from engine.clock import Clock
from engine.errors import Conflict, NotFound, PermissionDenied
from engine.masterdata.records import set_status
from engine.states import MasterDataStatus, check_transition
from engine.store.models import MasterDataRecord, MasterDataVersion, ProcessInstance


def effective_at(session: Session, type_name: str, key: str, at: datetime) -> MasterDataVersion | None:
    """The version of record ``type_name``/``key`` in force at ``at``; None if none was (or no such record).

    One query, on the (record_id, effective_from) index.
    """
    return session.scalars(
        select(MasterDataVersion).join(MasterDataRecord, MasterDataVersion.record_id == MasterDataRecord.id)
        .where(MasterDataRecord.type_name == type_name, MasterDataRecord.key == key,
               MasterDataVersion.effective_from <= at,
               or_(MasterDataVersion.effective_until.is_(None), MasterDataVersion.effective_until > at))
        .order_by(MasterDataVersion.effective_from.desc()).limit(1)).first()


def make_effective(session: Session, clock: Clock, actor: Actor, version_id: int,
                   effective_from: datetime | None, change_request_instance_id: int | None, *,
                   change_control: str) -> MasterDataVersion:
    """Make an in-review version effective from ``effective_from`` (None: now), superseding the one in force.

    The change-control process calls this once a change request is approved, naming its instance.
    Without one, PermissionDenied ``change_control_required`` unless change control is ``off``
    (``change_control``: the engine's mode). NotFound ``change_request_not_found``,
    ``masterdata_version_not_found``; Conflict ``masterdata_version_<status>`` (not in review),
    ``effective_from_in_past``, ``effective_before_current``.
    """
    if change_request_instance_id is None and change_control != "off":
        raise PermissionDenied("A master-data version becomes effective only through an approved change "
                               "control.", code="change_control_required")
    if (change_request_instance_id is not None
            and session.get(ProcessInstance, change_request_instance_id) is None):
        raise NotFound(f"There is no change-request instance {change_request_instance_id}.",
                       code="change_request_not_found")
    reason = (f"change request {change_request_instance_id}" if change_request_instance_id
              else "change control is off")
    return apply(session, clock, actor, version_id, effective_from, change_request_instance_id, reason)


def apply(session: Session, clock: Clock, actor: Actor, version_id: int, effective_from: datetime | None,
          change_request_instance_id: int | None, reason: str) -> MasterDataVersion:
    """The transition itself; callers other than ``make_effective``: the bootstrap rule only."""
    version = session.scalars(select(MasterDataVersion).where(MasterDataVersion.id == version_id)
                              .with_for_update()).first()
    if version is None:
        raise NotFound(f"There is no master-data version {version_id}.", code="masterdata_version_not_found")
    session.scalars(select(MasterDataRecord).where(MasterDataRecord.id == version.record_id)
                    .with_for_update()).one()
    now = clock.now()
    start = effective_from or now
    if start < now:
        raise Conflict("A version cannot be made effective in the past: that would change what was in force "
                       "then.", code="effective_from_in_past")
    check_transition(version.status, MasterDataStatus.EFFECTIVE, "masterdata_version")
    previous = session.scalars(select(MasterDataVersion).where(
        MasterDataVersion.record_id == version.record_id,
        MasterDataVersion.status == MasterDataStatus.EFFECTIVE).with_for_update()).first()
    if previous is not None:
        if previous.effective_from and start < previous.effective_from:
            raise Conflict(f"Version {previous.number} is effective from "
                           f"{previous.effective_from.isoformat()}; a successor cannot start earlier.",
                           code="effective_before_current")
        previous.effective_until = start
        set_status(session, clock, actor, previous, MasterDataStatus.SUPERSEDED,
                   "masterdata.version_superseded",
                   reason=f"superseded by version {version.number} ({reason})")
    version.effective_from, version.change_request_instance_id = start, change_request_instance_id
    return set_status(session, clock, actor, version, MasterDataStatus.EFFECTIVE,
                      "masterdata.version_effective", reason=reason)
