"""The master-data API: shapes (checked against the OpenAPI document by the client), roles, errors."""

from __future__ import annotations

import pytest

from engine.services import Gmpflow
from tests.api_support import ACCOUNTS, Api
from tests.masterdata_support import bom, material

BASE = "/api/v1/masterdata"
PRODUCT = {"part_number": "PRD-1", "description": "Tablet", "unit": "pcs"}


@pytest.fixture
def steward(api: Api, md, monkeypatch: pytest.MonkeyPatch) -> Api:  # type: ignore[no-untyped-def]  # noqa: F811
    """The API with the shipped types loaded and dana, a data steward, among the accounts."""
    monkeypatch.setitem(ACCOUNTS, "dana", ["data_steward"])
    return api


def create(api: Api, type_name: str, key: str, data: dict, title: str = "") -> dict:
    response = api.post(f"{BASE}/types/{type_name}/records", as_="dana",
                        json={"key": key, "title": title or key, "data": data})
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def make_effective(engine: Gmpflow, version_id: int) -> None:
    from tests.conftest import ADMIN

    engine.masterdata.make_effective(ADMIN, version_id, None, None)  # the change-control process, later


def test_types_are_listed_and_shown_with_their_schema(steward: Api) -> None:
    names = [t["name"] for t in steward.get(f"{BASE}/types", as_="olivia").json]
    assert "recipe" in names and "equipment_class" in names
    shown = steward.get(f"{BASE}/types/bom", as_="olivia").json
    assert shown["schema"]["properties"]["lines"]["type"] == "array"
    assert steward.get(f"{BASE}/types/spaceship", as_="olivia").json["code"] == "masterdata_type_not_found"


def test_a_draft_is_created_updated_submitted_and_then_frozen(steward: Api) -> None:
    created = create(steward, "material", "MAT-1", material("MAT-1"), "Lactose")
    assert (created["number"], created["status"], created["type"], created["key"]) == (1, "draft", "material",
                                                                                       "MAT-1")
    path = f"{BASE}/types/material/records/MAT-1/versions/1"
    updated = steward.call("PUT", path, as_="dana", json={"data": material("MAT-1", shelf_life_days=400)})
    assert updated.status_code == 200 and updated.json["data"]["shelf_life_days"] == 400
    assert steward.post(f"{path}/submit", as_="dana").json["status"] == "in_review"
    refused = steward.call("PUT", path, as_="dana", json={"data": material("MAT-1")})
    assert (refused.status_code, refused.json["code"]) == (409, "masterdata_version_immutable")
    assert steward.get(path, as_="olivia").json["data"]["shelf_life_days"] == 400


def test_schema_errors_come_back_per_field_by_json_pointer(steward: Api) -> None:
    response = steward.post(f"{BASE}/types/material/records", as_="dana",
                            json={"key": "MAT-1", "data": {"id": "MAT-1", "shelf_life_days": 0}})
    assert response.status_code == 400 and response.json["code"] == "masterdata_invalid"
    assert set(response.json["errors"]) == {"/supplier", "/unit_of_measure", "/shelf_life_days"}
    assert steward.get(f"{BASE}/types/material/records", as_="dana").json == []


def test_an_unknown_reference_is_a_400_naming_the_field(steward: Api) -> None:
    create(steward, "product", "PRD-1", PRODUCT)
    response = steward.post(f"{BASE}/types/bom/records", as_="dana",
                            json={"key": "BOM-1", "data": bom("PRD-1", "MAT-404")})
    assert response.status_code == 400
    assert response.json["errors"] == {"/lines/0/material": "there is no material record 'MAT-404'"}


def test_only_data_stewards_write(steward: Api) -> None:
    response = steward.post(f"{BASE}/types/product/records", as_="olivia",
                            json={"key": "PRD-1", "data": PRODUCT})
    assert (response.status_code, response.json["code"]) == (403, "role_required")


def test_record_effective_version_and_diff(steward: Api, engine: Gmpflow, clock) -> None:  # type: ignore[no-untyped-def]
    first = create(steward, "product", "PRD-1", PRODUCT)
    record = f"{BASE}/types/product/records/PRD-1"
    steward.post(f"{record}/versions/1/submit", as_="dana")
    make_effective(engine, first["id"])
    in_force_then = clock.now().isoformat()
    clock.advance(hours=1)  # within the tokens' lifetime
    second = steward.post(f"{record}/versions", as_="dana",
                          json={"data": {**PRODUCT, "description": "Caplet"}})
    assert (second.status_code, second.json["number"], second.json["status"]) == (201, 2, "draft")
    again = steward.post(f"{record}/versions", as_="dana", json={})
    assert (again.status_code, again.json["code"]) == (409, "masterdata_open_version_exists")
    steward.post(f"{record}/versions/2/submit", as_="dana")
    make_effective(engine, second.json["id"])
    shown = steward.get(record, as_="olivia").json
    assert [(v["number"], v["status"]) for v in shown["versions"]] == [(1, "superseded"), (2, "effective")]
    assert steward.get(f"{record}/effective", as_="olivia").json["number"] == 2
    from urllib.parse import quote

    assert steward.get(f"{record}/effective?at={quote(in_force_then)}", as_="olivia").json["number"] == 1
    before = steward.get(f"{record}/effective?at=2000-01-01T00:00:00Z", as_="olivia")
    assert (before.status_code, before.json["code"]) == (404, "masterdata_not_effective")
    assert steward.get(f"{record}/effective?at=yesterday", as_="olivia").json["code"] == "bad_filter"
    assert steward.get(f"{record}/diff/1/2", as_="olivia").json == [
        {"path": "/description", "before": "Tablet", "after": "Caplet"}]
    listed = steward.get(f"{BASE}/types/product/records", as_="olivia").json
    assert [(r["key"], [v["status"] for v in r["versions"]]) for r in listed] == [
        ("PRD-1", ["superseded", "effective"])]


def test_an_import_is_all_or_nothing(steward: Api) -> None:
    items = [{"type": "material", "key": "MAT-1", "title": "Lactose", "data": material("MAT-1")},
             {"type": "bom", "key": "BOM-1", "title": "BoM", "data": bom("PRD-404", "MAT-1")}]
    failed = steward.post(f"{BASE}/import", as_="dana", json={"records": items})
    assert (failed.status_code, failed.json["code"]) == (400, "import_failed")
    assert failed.json["errors"] == {"/1/data/product": "there is no product record 'PRD-404'"}
    assert steward.get(f"{BASE}/types/material/records", as_="dana").json == []
    items.append({"type": "product", "key": "PRD-404", "title": "Tablet",
                  "data": {**PRODUCT, "part_number": "PRD-404"}})
    done = steward.post(f"{BASE}/import", as_="dana", json={"records": items})
    assert done.status_code == 201 and [v["key"] for v in done.json] == ["MAT-1", "BOM-1", "PRD-404"]
