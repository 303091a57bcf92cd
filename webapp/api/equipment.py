"""The equipment logbook (``gmp.equipment_log``): read only. There is deliberately no route that writes an
entry: cleanings come from the ``equipment_cleaning`` model (performed and verified by two people), uses and
releases from the batches' own steps."""

from __future__ import annotations

from typing import Any

from gmp.services import GmpServices
from webapp.api import api
from webapp.api.auth import engine, principal
from webapp.api.openapi import operation
from webapp.api.schemas import ref


@api.get("/equipment/<equipment_id>/logbook")
@operation("An equipment's logbook: its state now (clean, dirty, in use by a batch, clean hold expired, "
           "never cleaned) and every entry, oldest first (cleaned, in use, released, maintenance, "
           "calibration)",
           tags=["equipment"], response=ref("EquipmentLogbook"),
           description="For the roles that read batch records (qa, supervisor, process_owner, admin); anyone "
                       "else: 403 `not_permitted`. Unknown equipment: 404 `equipment_not_found`.")
def equipment_logbook(equipment_id: str) -> Any:
    return engine().pack(GmpServices).equipment_logbook(principal(), equipment_id)
