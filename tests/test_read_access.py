"""Reads need a reason, for a batch record too: the roles that read every record, and whoever takes part in
one of the batch's instances (its execution, its steps, its release); a planner who does neither is refused
with 403 ``not_permitted`` and nothing changes. (Instance reads per caller: tests/test_api_access.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_support import Api
from tests.batch_support import PASSWORD, Plant
from tests.conftest import ADMIN
from tests.hostile_support import snapshot
from webapp import create_app

COPIES = ["/api/v1/batches/B-1/record", "/api/v1/batches/B-1/record.html"]


@pytest.fixture
def batch_api(plant: Plant) -> Api:
    plant.engine.add_user(ADMIN, "paula", "Paula Planner", PASSWORD, ["planner"])
    plant.engine.add_user(ADMIN, "pete", "Pete Owner", PASSWORD, ["process_owner"])
    app = create_app({"TESTING": True, "SECRET_KEY": "batch-reads"}, engine=plant.engine)
    api = Api(app, app.test_client())
    api._created.update({"olivia", "oscar", "sam", "quinn", "ada", "paula", "pete"})
    plant.start_batch()
    return api


@pytest.mark.parametrize("path", COPIES)
def test_a_batch_record_is_for_record_readers_and_the_batchs_participants(plant: Plant, batch_api: Any,
                                                                          path: str) -> None:
    for who in ("olivia", "quinn", "sam", "pete", "ada"):  # olivia holds the open perform task of step 1
        assert batch_api.get(path, as_=who).status_code == 200, who
    batch_api.token("paula")
    before = snapshot(plant.engine.db)
    refused = batch_api.get(path, as_="paula")
    assert (refused.status_code, refused.get_json()["code"]) == (403, "not_permitted")
    assert snapshot(plant.engine.db) == before


def test_an_operator_who_performed_a_step_still_reads_the_batch_record(plant: Plant, batch_api: Any) -> None:
    plant.perform("olivia", "B-1", 1, {"weight": 0.5},
                  materials=[{"material": "MAT-PARACETAMOL", "lot": "L-PARA-7", "quantity": 0.5,
                              "unit": "kg"}])
    assert batch_api.get("/api/v1/batches/B-1/record", as_="olivia").status_code == 200
