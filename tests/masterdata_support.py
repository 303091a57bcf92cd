"""Master-data fixtures and helpers (a plugin of the root conftest.py; holds no tests)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.masterdata.service import MasterData
from engine.services import Gmpflow
from tests.conftest import ADMIN

MATERIAL = {"id": "MAT-1", "supplier": "Acme Chemicals", "unit_of_measure": "kg", "shelf_life_days": 365}


def material(key: str, **changes: Any) -> dict[str, Any]:
    return {**MATERIAL, "id": key, **changes}


def bom(product: str, *materials: str) -> dict[str, Any]:
    return {"product": product, "lines": [{"material": m, "quantity": 1.5, "unit": "kg",
                                           "tolerance_percent": 2}
                                          for m in materials]}


@pytest.fixture
def md(engine: Gmpflow) -> MasterData:
    """The master-data services with the shipped types loaded."""
    engine.masterdata.load_types(ADMIN)
    return engine.masterdata


def effective_version(engine: Gmpflow, type_name: str, key: str, data: dict[str, Any],
                      title: str = "") -> Any:
    """A record whose version 1 is effective now (change control is off in tests)."""
    version = engine.masterdata.create_record(ADMIN, type_name, key, title or key, data)
    engine.masterdata.submit(ADMIN, type_name, key, 1)
    return engine.masterdata.make_effective(ADMIN, version.id, None, None)
