"""The GMP pack's demo data for ``gmpflow init --demo`` (after the demo users and master data): material lots
and the demo equipment recorded clean, dated from the day of ``init``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.audit import Actor
from engine.errors import Conflict
from engine.packs import DemoStep
from engine.store.models import MasterDataRecord
from gmp import equipment_log
from gmp.services import GmpServices

if TYPE_CHECKING:
    from engine.services import Gmpflow


def demo_lots(today: date) -> list[tuple[dict[str, Any], bool]]:
    """The demo recipe's material lots, dated from the day of ``init``: (fields, stored released)."""
    year, gone = (today + timedelta(days=365)).isoformat(), (today - timedelta(days=1)).isoformat()
    return [
        ({"lot_id": "PARA-24-001", "material": "MAT-PARACETAMOL", "quantity": 25.0, "uom": "kg",
          "expiry": year,
          "supplier_lot": "ACME-5521"}, True),
        ({"lot_id": "LAC-24-001", "material": "MAT-LACTOSE", "quantity": 10.0, "uom": "kg", "expiry": year,
          "supplier_lot": "DE-8812"}, True),
        ({"lot_id": "PARA-24-002", "material": "MAT-PARACETAMOL", "quantity": 25.0, "uom": "kg",
          "expiry": year,
          "supplier_lot": "ACME-5530"}, False),
        ({"lot_id": "PARA-23-009", "material": "MAT-PARACETAMOL", "quantity": 5.0, "uom": "kg",
          "expiry": gone,
          "supplier_lot": "ACME-4107"}, True),
    ]


def load_demo_lots(engine: Gmpflow, actor: Actor) -> list[dict[str, Any]]:
    """Lots not there yet. The quarantined one is received like any lot (its ``lot_disposition`` waits for
    QA); the released and the expired ones are stored released by ``init`` itself — no QA person signed
    them, and their ``lot.created`` audit event says so (bootstrap rule, like demo master data) rather than a
    signature being made in someone's name."""
    created = []
    for fields, released in demo_lots(engine.clock.now().date()):
        try:
            created.append(engine.pack(GmpServices).create_lot(actor, fields, released_by_init=released))
        except Conflict:
            continue  # from an earlier init
    return created


def load_demo_cleanings(engine: Gmpflow, actor: Actor) -> list[str]:
    """The demo equipment recorded clean as of init (bootstrap rule, said in each entry: no cleaning
    signatures are made in anyone's name); equipment with a cleaning already is left alone."""
    now = engine.clock.now()
    with engine.db.unit_of_work() as session:
        keys = list(session.scalars(select(MasterDataRecord.key)
                                    .where(MasterDataRecord.type_name == "equipment")
                                    .order_by(MasterDataRecord.key)))
        return [key for key in keys if equipment_log.record_init_cleaning(session, actor, key, now)]


def steps() -> list[DemoStep]:
    """The demo steps in the order ``init`` runs them, each printing a line per thing it added."""
    return [
        DemoStep("lots", lambda engine, actor: [
            f"demo lot {lot['lot_id']} {lot['material']} {lot['status']} (expiry {lot['expiry']})"
            for lot in load_demo_lots(engine, actor)]),
        DemoStep("cleanings", lambda engine, actor: [
            f"demo equipment {equipment_id} recorded clean as of today"
            for equipment_id in load_demo_cleanings(engine, actor)]),
    ]
