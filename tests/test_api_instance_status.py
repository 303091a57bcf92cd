"""``GET /api/v1/instances/{id}/status``: an instance's row (status, business key, times) without loading
its state, for a client waiting for the end of an instance; the same readers as the detail."""

from __future__ import annotations

from typing import Any

from engine.services import Gmpflow
from tests.api_support import DEMO, start_demo
from tests.conftest import ADMIN


def test_the_status_is_the_details_instance_without_the_rest(api: Any, engine: Gmpflow) -> None:
    engine.deploy(ADMIN, [DEMO])
    started = start_demo(api, "REQ-S")
    status = api.get(f"/api/v1/instances/{started['id']}/status", as_="olivia")
    detail = api.get(f"/api/v1/instances/{started['id']}", as_="olivia").get_json()
    assert status.status_code == 200
    assert status.get_json() == {name: detail[name] for name in status.get_json()} == started
    assert "variables" not in status.get_json() and "history" not in status.get_json()
    assert status.get_json()["status"] == "waiting"


def test_an_unknown_instance_is_404_for_a_record_reader_and_403_for_anyone_else(api: Any,
                                                                                engine: Gmpflow) -> None:
    missing = api.get("/api/v1/instances/999/status", as_="quinn")
    assert (missing.status_code, missing.get_json()["code"]) == (404, "instance_not_found")
    refused = api.get("/api/v1/instances/999/status", as_="olivia")
    assert (refused.status_code, refused.get_json()["code"]) == (403, "not_permitted")


def test_the_status_has_the_details_readers_at_every_step_of_taking_part(api: Any, engine: Gmpflow) -> None:
    """Starting, holding an open task of one's lane, having completed a task: each makes a participant;
    the status read answers exactly when the detail does."""
    engine.deploy(ADMIN, [DEMO])
    instance_id = start_demo(api, "REQ-P")["id"]

    def same_answer(who: str) -> int:
        status = api.get(f"/api/v1/instances/{instance_id}/status", as_=who).status_code
        assert status == api.get(f"/api/v1/instances/{instance_id}", as_=who).status_code, who
        return status

    assert [same_answer(who) for who in ("olivia", "oscar", "paula", "sam")] == [200, 200, 403, 200]
