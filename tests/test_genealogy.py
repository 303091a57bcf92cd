"""Genealogy (issue 17.3): every batch produces a product lot, in quarantine until the batch's release
dispositions it through the model; ``GET /api/v1/genealogy/{lot_id}`` and ``gmpflow genealogy`` answer across
any number of levels — here three: a material lot → the intermediate batch B-1 → its lot L-B-1, consumed by
the packing batch B-2 → L-B-2. A recall from the material lot is one call."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from click.testing import CliRunner

from engine import cli
from engine.errors import PermissionDenied
from gmp.services import GmpServices
from tests.api_support import Api, body
from tests.batch_support import PASSWORD, Plant, effective
from tests.conftest import ADMIN
from webapp import create_app

GRANULATE = {"impeller speed": 200, "moisture": 2.0}
PACK = {"product": "PRD-PACK-500", "description": "Pack the tablets", "steps": [
    {"number": 1, "instruction": "Count the tablets into boxes.",
     "parameters": [{"name": "count", "unit": "pcs", "target": 1000, "low": 990, "high": 1010,
                     "critical": False}],
     "materials": [{"material": "PRD-PARA-500", "quantity": 1000, "unit": "pcs"}]}]}


def make_and_release_b1(plant: Plant) -> None:
    """The intermediate: every step clean with released lots, the yield, QA's review and release."""
    batch = plant.start_batch("B-1", "MO-1")
    plant.perform("olivia", "B-1", 1, {"weight": 0.5},
                  materials=[{"material": "MAT-PARACETAMOL", "lot": "L-PARA-7", "quantity": 0.5,
                              "unit": "kg"}])
    step2 = plant.perform("olivia", "B-1", 2, GRANULATE, equipment="EQ-GRAN-01",
                          materials=[{"material": "MAT-LACTOSE", "lot": "L-LAC-3", "quantity": 0.15,
                                      "unit": "kg"}])
    plant.complete("oscar", step2, "verify", {"verified": True}, "Verified")
    plant.perform("olivia", "B-1", 3, {"blend time": 10})
    plant.complete("olivia", batch, "record_yield", {"produced_quantity": 1000}, "Performed")
    release = plant.instance("batch_release", "B-1")
    plant.complete("quinn", release, "review_record", {"record_reviewed": True, "review_comment": "clean"},
                   "Reviewed")
    plant.complete("quinn", release, "review_audit_trail", {"audit_trail_reviewed": True}, "Reviewed")
    plant.complete("quinn", release, "decide", {"disposition": "released", "decision_reason": "conforms"},
                   "Released")


def pack_b2(plant: Plant) -> None:
    """The packing batch consumes the intermediate's lot."""
    engine = plant.engine
    effective(engine, "material", "PRD-PARA-500", {"id": "PRD-PARA-500", "description": "bulk tablets",
                                                   "supplier": "own production", "unit_of_measure": "pcs",
                                                   "shelf_life_days": 730})
    effective(engine, "product", "PRD-PACK-500", {"part_number": "PRD-PACK-500", "description": "boxed",
                                                  "unit": "box"})
    recipe = effective(engine, "recipe", "SOP-PACK", PACK)
    plant.simulator.counterpart.add_order("MO-2", "PRD-PACK-500", 10, state="running")
    engine.correlate(ADMIN, "batch_execution_requested", {"business_key": "B-2"}, {
        "order_id": "MO-2", "batch_id": "B-2", "product": "PRD-PACK-500", "quantity": 10,
        "recipe_key": "SOP-PACK", "recipe_version": recipe.number, "recipe_version_id": recipe.id,
        "bom_version_id": None, "routing_version_id": None, "released_by": "paula",
        "released_at": plant.clock.now().isoformat()})
    plant.run_jobs()
    plant.perform("oscar", "B-2", 1, {"count": 1000},
                  materials=[{"material": "PRD-PARA-500", "lot": "L-B-1", "quantity": 1000, "unit": "pcs"}])


@pytest.fixture
def three_levels(plant: Plant) -> Api:
    make_and_release_b1(plant)
    pack_b2(plant)
    plant.engine.add_user(ADMIN, "paula", "Paula Planner", PASSWORD, ["planner"])
    app = create_app({"TESTING": True, "SECRET_KEY": "genealogy"}, engine=plant.engine)
    api = Api(app, app.test_client())
    api._created.update({"olivia", "oscar", "quinn", "paula"})
    return api


def node_set(found: dict[str, Any]) -> set[tuple[str, str, Any, str]]:
    return {(n["kind"], n["id"], n["material"], n["status"]) for n in found["nodes"]}


def edge_set(found: dict[str, Any]) -> set[tuple[str, str, float, str]]:
    return {(e["from"], e["to"], e["quantity"], e["uom"]) for e in found["edges"]}


def test_a_batch_produces_a_lot_in_quarantine_that_its_release_dispositions(plant: Plant) -> None:
    plant.start_batch("B-1", "MO-1")
    lot = plant.engine.pack(GmpServices).get_lot("L-B-1")
    assert (lot["material"], lot["quantity"], lot["uom"], lot["status"]) == ("PRD-PARA-500", 1000, "pcs",
                                                                            "quarantine")
    assert [h["kind"] for h in lot["history"]] == ["created", "produced"]


def test_three_levels_backward_and_a_recall_forward_in_one_call(plant: Plant, three_levels: Api) -> None:
    api = three_levels
    released = plant.engine.pack(GmpServices).get_lot("L-B-1")
    assert released["status"] == "released"  # by the batch's release, QA's signature named in its history
    assert [(h["kind"], h["to_status"], h["by"]) for h in released["history"]][-2:] == [
        ("status", "released", "quinn"), ("consumed", None, "oscar")]
    backward = body(api.get("/api/v1/genealogy/L-B-2", as_="quinn"))
    assert backward["root"] == "L-B-2"
    assert node_set(backward) == {
        ("lot", "L-B-2", "PRD-PACK-500", "quarantine"), ("batch", "B-2", "PRD-PACK-500", "waiting"),
        ("lot", "L-B-1", "PRD-PARA-500", "released"), ("batch", "B-1", "PRD-PARA-500", "completed"),
        ("lot", "L-PARA-7", "MAT-PARACETAMOL", "released"), ("lot", "L-LAC-3", "MAT-LACTOSE", "released")}
    assert edge_set(backward) == {("B-2", "L-B-2", 10, "box"), ("L-B-1", "B-2", 1000, "pcs"),
                                  ("B-1", "L-B-1", 1000, "pcs"), ("L-PARA-7", "B-1", 0.5, "kg"),
                                  ("L-LAC-3", "B-1", 0.15, "kg")}
    recall = body(api.get("/api/v1/genealogy/L-PARA-7?direction=forward", as_="quinn"))
    assert {n["id"] for n in recall["nodes"]} == {"L-PARA-7", "B-1", "L-B-1", "B-2", "L-B-2"}
    assert edge_set(recall) == {("L-PARA-7", "B-1", 0.5, "kg"), ("B-1", "L-B-1", 1000, "pcs"),
                                ("L-B-1", "B-2", 1000, "pcs"), ("B-2", "L-B-2", 10, "box")}
    assert set(recall) == {"root", "nodes", "edges"}


def test_genealogy_is_read_like_records(plant: Plant, three_levels: Api) -> None:
    api = three_levels
    assert api.get("/api/v1/genealogy/L-B-2", as_="oscar").status_code == 200  # he packed B-2
    refused = api.get("/api/v1/genealogy/L-B-2", as_="paula")
    assert (refused.status_code, body(refused)["code"]) == (403, "not_permitted")
    with pytest.raises(PermissionDenied):
        plant.engine.pack(GmpServices).genealogy("L-B-2", reader=plant.engine.principal("paula"))
    unknown = api.get("/api/v1/genealogy/L-NONE", as_="quinn")
    assert (unknown.status_code, body(unknown)["code"]) == (404, "lot_not_found")
    wrong = api.get("/api/v1/genealogy/L-B-2?direction=sideways", as_="quinn")
    assert wrong.status_code == 400


def test_the_command_line_prints_the_same_graph(plant: Plant, three_levels: Api,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMPFLOW_DATABASE_URL", plant.database.url)
    monkeypatch.setenv("GMPFLOW_AUDIT_KEY_FILE", str(plant.database.audit_key.path))
    runner = CliRunner()
    as_json = runner.invoke(cli.main, ["genealogy", "L-PARA-7", "--forward", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert as_json.output.strip().startswith("{")
    assert edge_set(json.loads(as_json.output)) == edge_set(
        plant.engine.pack(GmpServices).genealogy("L-PARA-7", "forward"))
    text = runner.invoke(cli.main, ["genealogy", "L-B-2"])
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[:3] == ["lot L-B-2 (PRD-PACK-500, quarantine)",
                                            "  10 box ← batch B-2 (PRD-PACK-500, waiting)",
                                            "    1000 pcs ← lot L-B-1 (PRD-PARA-500, released)"]


def web_client(api: Api, username: str) -> Any:
    client = api.app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


def test_the_genealogy_page_draws_the_graph_for_those_who_may_read_it(plant: Plant,
                                                                     three_levels: Api) -> None:
    page = web_client(three_levels, "quinn").get("/genealogy/L-PARA-7?direction=forward")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    main = html.split("<main", 1)[-1].split("</main>", 1)[0]
    assert '<svg id="genealogy-graph"' in main and "<script" not in main  # drawn by the server
    for node in ("L-PARA-7", "B-1", "L-B-1", "B-2", "L-B-2"):
        assert f'data-id="{node}"' in html, node
    assert 'data-from="L-B-1" data-to="B-2"' in html
    assert web_client(three_levels, "paula").get("/genealogy/L-PARA-7").status_code == 403
