"""The operations the order-release process (``processes/order_release``) calls that read gmpflow's own
state: the master data in force for an order, and who signed a step.

Like the change-control operations (``gmp.governance``) they need the database, so they are bound to
one engine: ``Gmpflow`` adds ``operations(self)`` to its registry when it is built. Both only read, so
both are idempotent. They gather facts; the rules that judge them live in the model (expressions and
the DMN ``release_readiness``), not here.

Convention linking the ERP and master data: the key of the master-data ``product`` is the ERP's product
code, and recipe, BoM and routing records name it in their ``product`` field. An ERP BoM whose name ends
in ``v<N>`` (``"Paracetamol 500 mg, BoM v1"``) names version N of the master-data BoM; an order (or the
message that announces it) may name a recipe version too.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine import signatures
from engine.errors import ConnectorError
from engine.masterdata import effective
from engine.operations import CallContext, Operation
from engine.store.models import MasterDataRecord, MasterDataVersion

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from engine.services import Gmpflow

DEFINING_TYPES = ("recipe", "bom", "routing")
NAMED_VERSION = re.compile(r"\bv(?:ersion)?\s*(\d+)\s*$", re.IGNORECASE)

RESOLVE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["product", "planned_start"], "additionalProperties": False,
    "properties": {
        "product": {"type": "string", "minLength": 1,
                    "description": "The ERP's product code (= master-data key)."},
        "planned_start": {"type": "string", "description": "ISO date or date-time the order starts."},
        "planned_end": {"type": ["string", "null"], "description": "ISO date or date-time it ends."},
        "bom_name": {"type": ["string", "null"],
                     "description": "The ERP BoM's name; a trailing v<N> names a version."},
        "recipe_version": {"type": ["integer", "null"], "description": "The recipe version the order names."},
    },
}
_VERSION = {"type": ["object", "null"], "properties": {
    "key": {"type": "string"}, "version": {"type": "integer"}, "version_id": {"type": "integer"},
    "title": {"type": "string"}}}
RESOLVE_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["recipe", "bom", "routing", "named_versions", "required_equipment_classes",
                 "required_qualifications", "equipment", "qualifications"],
    "properties": {
        "recipe": _VERSION, "bom": _VERSION, "routing": _VERSION,
        "named_versions": {"type": "object"},
        "required_equipment_classes": {"type": "array", "items": {"type": "string"}},
        "required_qualifications": {"type": "array", "items": {"type": "string"}},
        "equipment": {"type": "array", "items": {"type": "object"}},
        "qualifications": {"type": "array", "items": {"type": "object"}},
    },
}
SIGNATURE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["meaning"], "additionalProperties": False,
    "properties": {"meaning": {"type": "string", "description": "The signature meaning, e.g. Released."}},
}


def operations(engine: Gmpflow) -> list[Operation]:
    return [
        Operation("masterdata.resolve_for_order", lambda p, c: resolve_for_order(engine, p), RESOLVE_SCHEMA,
                  RESOLVE_RESULT, idempotent=True,
                  description="The recipe/SOP, BoM and routing versions of a product effective at an order's "
                              "planned start, the versions the order names, and the equipment and personnel "
                              "qualifications in force then for the recipe's required classes and skills."),
        Operation("signature.latest", lambda p, c: latest_signature(engine, p, c), SIGNATURE_SCHEMA,
                  idempotent=True,
                  description="The latest signature of this instance with the given meaning: "
                              "{username, printed_name, meaning, signed_at}."),
    ]


def _moment(value: str) -> datetime:
    """An ISO date (its midnight, UTC) or date-time as an aware UTC datetime."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConnectorError(f"'{value}' is not an ISO date or date-time.", code="bad_date",
                             retryable=False) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _in_force(session: Session, type_name: str, at: datetime) -> list[MasterDataVersion]:
    """The versions of every record of ``type_name`` in force at ``at``, by key."""
    keys = session.scalars(select(MasterDataRecord.key).where(MasterDataRecord.type_name == type_name)
                           .order_by(MasterDataRecord.key)).all()
    found = [effective.effective_at(session, type_name, key, at) for key in keys]
    return [v for v in found if v is not None]


def _ref(version: MasterDataVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"key": version.record.key, "version": version.number, "version_id": version.id,
            "title": version.record.title or version.record.key}


def named_bom_version(bom_name: str | None) -> int | None:
    match = NAMED_VERSION.search(bom_name or "")
    return int(match.group(1)) if match else None


def resolve_for_order(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    start = _moment(params["planned_start"])
    product = params["product"]
    with engine.db.read() as session:
        defining = {t: next((v for v in _in_force(session, t, start)
                             if (v.data or {}).get("product") == product), None)
                    for t in DEFINING_TYPES}
        steps = (defining["recipe"].data.get("steps", []) if defining["recipe"] is not None else [])
        classes = sorted({s["required_equipment_class"] for s in steps if s.get("required_equipment_class")})
        skills = sorted({s["required_qualification"] for s in steps if s.get("required_qualification")})
        equipment = [{"id": v.record.key, "class": v.data.get("class"), "status": v.data.get("status"),
                      "cleaning_status": v.data.get("cleaning_status"),
                      "calibration_due": v.data.get("calibration_due")}
                     for v in _in_force(session, "equipment", start) if v.data.get("class") in classes]
        qualifications = [{"person": v.data.get("person"), "qualification": v.data.get("qualification"),
                           "valid_until": v.data.get("valid_until")}
                          for v in _in_force(session, "personnel_qualification", start)
                          if v.data.get("qualification") in skills]
        return {**{t: _ref(v) for t, v in defining.items()},
                "named_versions": {"bom": named_bom_version(params.get("bom_name")),
                                   "recipe": params.get("recipe_version")},
                "required_equipment_classes": classes, "required_qualifications": skills,
                "equipment": equipment, "qualifications": qualifications,
                "effective_at": start.isoformat()}


def latest_signature(engine: Gmpflow, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
    with engine.db.read() as session:
        found = [signatures.manifestation(sig, username)
                 for sig, username in signatures.signatures_of(session, context.instance_id)
                 if sig.meaning == params["meaning"]]
    if not found:
        raise ConnectorError(f"Instance {context.instance_id} has no signature meaning {params['meaning']}.",
                             code="signature_not_found", retryable=False)
    last = found[-1]
    return {k: last[k] for k in ("username", "printed_name", "meaning", "signed_at")}
