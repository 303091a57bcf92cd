"""The GMP pack's tables: material lots, their history (the genealogy's edges) and the equipment logbook.

They are declared on the engine's ``Base`` so that one metadata holds the whole schema (the Alembic migrations
under ``engine/migrations`` create them); the engine reaches them only through the pack hook
``gmpflow_tables`` (``engine.packs.schema``), never by name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId


class Lot(Base):
    """A material lot (``gmp.lots``). ``status`` is the stored disposition (``LotStatus``); ``expired`` is
    never stored, it is read from ``expiry`` and the clock. Its status changes only through the
    ``lot_disposition`` instance that its creation started (``disposition_instance_id``)."""

    __tablename__ = "lot"
    __table_args__ = (Index("ix_lot_material_status", "material", "status"),)

    lot_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    material: Mapped[str] = mapped_column(String(50))
    quantity: Mapped[float] = mapped_column(Float)
    available: Mapped[float] = mapped_column(Float)
    uom: Mapped[str] = mapped_column(String(20))
    expiry: Mapped[str] = mapped_column(String(10))  # ISO date
    retest: Mapped[str | None] = mapped_column(String(10))
    supplier_lot: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    disposition_instance_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class LotEvent(Base):
    """A lot's history: ``created``, ``status`` (from -> to, who, why, the deciding instance) and ``consumed``
    (quantity, batch, step instance, step): the consumptions are the genealogy's edges. Rows are never
    changed."""

    __tablename__ = "lot_event"
    __table_args__ = (Index("ix_lot_event_lot", "lot_id", "id"), Index("ix_lot_event_batch", "batch_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lot_id: Mapped[str] = mapped_column(String(100), ForeignKey("lot.lot_id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(200))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[float | None] = mapped_column(Float)
    uom: Mapped[str | None] = mapped_column(String(20))
    batch_id: Mapped[str | None] = mapped_column(String(200))
    instance_id: Mapped[int | None] = mapped_column(BigId)
    step: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)


class EquipmentLogEntry(Base):
    """One line of an equipment logbook (``gmp.equipment_log``): ``cleaned`` (performed and verified by
    whom, through the cleaning model), ``in_use`` (by a batch, for a product, from a step), ``released``
    (the batch ended: dirty with that product), ``maintenance``, ``calibration``. Append-only (database
    triggers refuse UPDATE and DELETE) and sealed (``row_mac``)."""

    __tablename__ = "equipment_log"
    __table_args__ = (Index("ix_equipment_log_equipment", "equipment_id", "id"),
                      Index("ix_equipment_log_batch", "batch_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    equipment_id: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(200))
    batch_id: Mapped[str | None] = mapped_column(String(200))
    product: Mapped[str | None] = mapped_column(String(50))
    step: Mapped[int | None] = mapped_column(Integer)
    instance_id: Mapped[int | None] = mapped_column(BigId)
    performed_by: Mapped[str | None] = mapped_column(String(100))
    verified_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    row_mac: Mapped[str | None] = mapped_column(String(64))  # gmp.equipment_log: every column


TABLES: tuple[Table, ...] = tuple(Base.metadata.tables[model.__tablename__]
                                  for model in (Lot, LotEvent, EquipmentLogEntry))
