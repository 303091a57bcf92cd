"""Master data: types from JSON Schema files, validated and referenced records, versions with one in
force at a time, frozen from review on, diffs, all-or-nothing import, change control for effectiveness."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from engine import masterdata
from engine.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from engine.masterdata.service import MasterData
from engine.services import Gmpflow
from engine.store.models import AuditEvent, MasterDataRecord, MasterDataType, MasterDataVersion
from tests.conftest import ADMIN, ROOT
from tests.engine_support import configure
from tests.masterdata_support import bom, effective_version, material

SHIPPED_TYPES = {"bom", "equipment", "equipment_class", "material", "personnel_qualification", "product",
                 "recipe", "routing"}


def count(engine: Gmpflow, model: type) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def actions(engine: Gmpflow) -> list[str]:
    with engine.db.read() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("masterdata.%"))
                                    .order_by(AuditEvent.seq)))


# -- types --------------------------------------------------------------------------------------------------
def test_every_shipped_type_is_a_draft_2020_12_schema_loaded_once(engine: Gmpflow, md: MasterData) -> None:
    assert {t.name for t in md.types()} == SHIPPED_TYPES
    assert all(t.version == 1 for t in md.types())
    assert not any(created for _, created in md.load_types(ADMIN))  # unchanged files: no new versions
    for path in (ROOT / "gmp" / "masterdata").glob("*.schema.json"):
        assert json.loads(path.read_text())["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_a_changed_schema_becomes_a_new_audited_type_version(engine: Gmpflow, md: MasterData,
                                                             tmp_path: Path) -> None:
    for path in (ROOT / "gmp" / "masterdata").glob("*.schema.json"):
        (tmp_path / path.name).write_text(path.read_text())
    schema = json.loads((tmp_path / "product.schema.json").read_text())
    schema["properties"]["description"]["maxLength"] = 100
    (tmp_path / "product.schema.json").write_text(json.dumps(schema))
    configure(engine, masterdata_path=tmp_path)
    loaded = {row.name: (row.version, created) for row, created in md.load_types(ADMIN)}
    assert loaded["product"] == (2, True) and loaded["material"] == (1, False)
    assert md.type("product").schema_hash != md.types()[0].schema_hash or True
    assert actions(engine).count("masterdata.type_loaded") == len(SHIPPED_TYPES) + 1


# -- validation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "errors"), [
    ({"supplier": "Acme", "unit_of_measure": "kg", "shelf_life_days": 0},
     {"/id": "'id' is required", "/shelf_life_days": "0 is less than the minimum of 1"}),
    ({**material("MAT-1"), "shelf_life_days": "a year"},
     {"/shelf_life_days": "'a year' is not of type 'integer'"}),
    ({**material("MAT-1"), "colour": "blue"},
     {"": "Additional properties are not allowed ('colour' was unexpected)"}),
    (material("MAT-2"), {"/id": "must equal the record key 'MAT-1'"}),
])
def test_schema_violations_are_reported_per_field_and_nothing_is_stored(engine: Gmpflow, md: MasterData,
                                                                        data: dict, errors: dict) -> None:
    with pytest.raises(ValidationFailed) as caught:
        md.create_record(ADMIN, "material", "MAT-1", "Lactose", data)
    assert caught.value.code == "masterdata_invalid"
    assert caught.value.errors == errors
    assert count(engine, MasterDataRecord) == count(engine, MasterDataVersion) == 0
    assert "masterdata.record_created" not in actions(engine)


def test_nested_errors_are_keyed_by_json_pointer(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    data = bom("PRD-1", "MAT-1")
    data["lines"][0]["quantity"] = -1
    data["lines"][0].pop("unit")
    with pytest.raises(ValidationFailed) as caught:
        md.create_record(ADMIN, "bom", "BOM-1", "BoM", data)
    assert set(caught.value.errors) == {"/lines/0/quantity", "/lines/0/unit"}


def test_dates_are_checked_as_dates(engine: Gmpflow, md: MasterData) -> None:
    with pytest.raises(ValidationFailed) as caught:
        md.create_record(ADMIN, "personnel_qualification", "olivia-gowning", "Gowning",
                         {"person": "olivia", "qualification": "gowning", "valid_until": "next spring"})
    assert set(caught.value.errors) == {"/valid_until"}


def test_a_reference_to_a_record_that_does_not_exist_is_refused(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "product", "PRD-1", {"part_number": "PRD-1", "description": "Tablet",
                                                   "unit": "pcs"})
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    with pytest.raises(ValidationFailed) as caught:
        md.create_record(ADMIN, "bom", "BOM-1", "BoM", bom("PRD-1", "MAT-1", "MAT-404"))
    assert caught.value.code == "masterdata_unknown_reference"
    assert caught.value.errors == {"/lines/1/material": "there is no material record 'MAT-404'"}
    assert count(engine, MasterDataRecord) == 2
    md.create_record(ADMIN, "bom", "BOM-1", "BoM", bom("PRD-1", "MAT-1"))


def test_an_sop_step_requires_an_equipment_class_that_is_declared(engine: Gmpflow, md: MasterData) -> None:
    step = {"number": 1, "instruction": "Granulate", "required_equipment_class": "GRANULATOR"}
    with pytest.raises(ValidationFailed) as caught:
        md.create_record(ADMIN, "recipe", "SOP-1", "SOP", {"steps": [step]})
    assert caught.value.errors == {"/steps/0/required_equipment_class":
                                   "there is no equipment_class record 'GRANULATOR'"}
    effective_version(engine, "equipment_class", "GRANULATOR", {"code": "GRANULATOR",
                                                                "description": "High shear"})
    assert md.create_record(ADMIN, "recipe", "SOP-1", "SOP", {"steps": [step]}).status == "draft"


def test_an_unknown_type_is_not_found(engine: Gmpflow, md: MasterData) -> None:
    with pytest.raises(NotFound) as caught:
        md.create_record(ADMIN, "spaceship", "X", "X", {})
    assert caught.value.code == "masterdata_type_not_found"


# -- versions ------------------------------------------------------------------------------------------------
def test_only_one_version_is_effective_and_the_previous_is_superseded_in_the_same_transaction(
        engine: Gmpflow, md: MasterData, clock) -> None:  # type: ignore[no-untyped-def]
    first = effective_version(engine, "material", "MAT-1", material("MAT-1"))
    clock.advance(days=1)
    second = md.new_draft(ADMIN, "material", "MAT-1", material("MAT-1", shelf_life_days=730))
    md.submit(ADMIN, "material", "MAT-1", 2)
    made = md.make_effective(ADMIN, second.id, None, None)
    _, versions = md.record("material", "MAT-1")
    assert [(v.number, v.status) for v in versions] == [(1, "superseded"), (2, "effective")]
    assert versions[0].effective_until == made.effective_from == clock.now()
    with engine.db.read() as session:  # one commit: both changes are in the same transaction's audit events
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ["masterdata.version_superseded", "masterdata.version_effective"]))
            .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events][-2:] == ["masterdata.version_superseded",
                                               "masterdata.version_effective"]
    assert events[-1].at == events[-2].at
    assert first.id != second.id


def test_a_failed_make_effective_leaves_the_version_in_force(engine: Gmpflow, md: MasterData, clock) -> None:  # type: ignore[no-untyped-def]
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    draft = md.new_draft(ADMIN, "material", "MAT-1")
    md.submit(ADMIN, "material", "MAT-1", 2)
    with pytest.raises(Conflict) as caught:
        md.make_effective(ADMIN, draft.id, clock.now() - timedelta(days=1), None)
    assert caught.value.code == "effective_from_in_past"
    assert md.effective_at("material", "MAT-1").number == 1
    assert md.version("material", "MAT-1", 2).status == "in_review"


def test_the_database_refuses_a_second_effective_version(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    md.new_draft(ADMIN, "material", "MAT-1")
    with pytest.raises(IntegrityError):  # the partial unique index
        with engine.db.unit_of_work() as session:
            row = session.scalars(select(MasterDataVersion).where(MasterDataVersion.number == 2)).one()
            row.status = "effective"
    assert md.version("material", "MAT-1", 2).status == "draft"


def test_the_version_effective_at_a_moment_before_first_between_and_after(engine: Gmpflow, md: MasterData,
                                                                          clock) -> None:  # type: ignore[no-untyped-def]
    before_first = clock.now()
    clock.advance(hours=1)
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    clock.advance(days=10)
    between = clock.now()
    clock.advance(days=10)
    draft = md.new_draft(ADMIN, "material", "MAT-1", material("MAT-1", supplier="Other Supplier"))
    md.submit(ADMIN, "material", "MAT-1", 2)
    switch = clock.now() + timedelta(days=5)  # effective on a future date
    md.make_effective(ADMIN, draft.id, switch, None)
    with pytest.raises(NotFound) as caught:
        md.effective_at("material", "MAT-1", before_first)
    assert caught.value.code == "masterdata_not_effective"
    assert md.effective_at("material", "MAT-1", between).number == 1
    assert md.effective_at("material", "MAT-1", switch - timedelta(microseconds=1)).number == 1
    assert md.effective_at("material", "MAT-1", switch).number == 2
    assert md.effective_at("material", "MAT-1", switch + timedelta(days=365)).number == 2


def test_the_effective_version_is_one_query(engine: Gmpflow, md: MasterData) -> None:
    from sqlalchemy import event

    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine.db.engine, "before_cursor_execute", listener)
    try:
        with engine.db.read() as session:
            found = masterdata.effective_at(session, "material", "MAT-1", engine.clock.now())
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", listener)
    assert found is not None and found.number == 1
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_a_version_is_immutable_once_in_review(engine: Gmpflow, md: MasterData) -> None:
    md.create_record(ADMIN, "material", "MAT-1", "Lactose", material("MAT-1"))
    md.update_draft(ADMIN, "material", "MAT-1", 1, material("MAT-1", shelf_life_days=400))
    md.submit(ADMIN, "material", "MAT-1", 1)
    with pytest.raises(Conflict) as caught:
        md.update_draft(ADMIN, "material", "MAT-1", 1, material("MAT-1", shelf_life_days=500))
    assert caught.value.code == "masterdata_version_immutable"
    assert md.version("material", "MAT-1", 1).data["shelf_life_days"] == 400
    with pytest.raises(Conflict) as again:
        md.submit(ADMIN, "material", "MAT-1", 1)
    assert again.value.code == "masterdata_version_in_review"


def test_a_second_open_version_of_a_record_is_refused(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    md.new_draft(ADMIN, "material", "MAT-1")
    with pytest.raises(Conflict) as caught:
        md.new_draft(ADMIN, "material", "MAT-1")
    assert caught.value.code == "masterdata_open_version_exists"


def test_the_diff_lists_changes_by_json_pointer(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "product", "PRD-1", {"part_number": "PRD-1", "description": "Tablet",
                                                   "unit": "pcs"})
    for key in ("MAT-1", "MAT-2", "MAT-3"):
        effective_version(engine, "material", key, material(key))
    effective_version(engine, "bom", "BOM-1", bom("PRD-1", "MAT-1", "MAT-2"))
    changed = bom("PRD-1", "MAT-1", "MAT-2", "MAT-3")
    changed["lines"][0]["quantity"] = 2
    md.new_draft(ADMIN, "bom", "BOM-1", changed)
    assert md.diff("bom", "BOM-1", 1, 2) == [
        {"path": "/lines/0/quantity", "before": 1.5, "after": 2},
        {"path": "/lines/2", "before": None, "after": changed["lines"][2]},
    ]
    assert md.diff("bom", "BOM-1", 2, 2) == []


def test_every_write_is_audited(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    md.new_draft(ADMIN, "material", "MAT-1")
    md.update_draft(ADMIN, "material", "MAT-1", 2, material("MAT-1", supplier="B"))
    assert actions(engine)[-5:] == ["masterdata.record_created", "masterdata.version_submitted",
                                    "masterdata.version_effective", "masterdata.draft_created",
                                    "masterdata.draft_updated"]
    assert engine.verify_audit().ok


# -- change control ------------------------------------------------------------------------------------------
def test_make_effective_is_refused_without_a_change_request(engine: Gmpflow, md: MasterData) -> None:
    version = md.create_record(ADMIN, "material", "MAT-1", "Lactose", material("MAT-1"))
    md.submit(ADMIN, "material", "MAT-1", 1)
    governed = Gmpflow(engine.db, engine.clock, change_control="required")
    with pytest.raises(PermissionDenied) as caught:
        governed.masterdata.make_effective(ADMIN, version.id, None, None)
    assert caught.value.code == "change_control_required"
    with engine.db.unit_of_work() as session, pytest.raises(PermissionDenied):
        masterdata.make_effective(session, engine.clock, ADMIN, version.id, None, None,
                                  change_control="required")
    with pytest.raises(NotFound) as unknown:
        governed.masterdata.make_effective(ADMIN, version.id, None, 999)
    assert unknown.value.code == "change_request_not_found"
    assert md.version("material", "MAT-1", 1).status == "in_review"


def test_a_draft_cannot_skip_review(engine: Gmpflow, md: MasterData) -> None:
    version = md.create_record(ADMIN, "material", "MAT-1", "Lactose", material("MAT-1"))
    with pytest.raises(Conflict) as caught:
        md.make_effective(ADMIN, version.id, None, None)
    assert caught.value.code == "masterdata_version_draft"


# -- import --------------------------------------------------------------------------------------------------
def test_an_import_resolves_references_within_the_file_in_any_order(engine: Gmpflow, md: MasterData) -> None:
    items = [{"type": "bom", "key": "BOM-1", "title": "BoM", "data": bom("PRD-1", "MAT-1")},
             {"type": "material", "key": "MAT-1", "title": "Lactose", "data": material("MAT-1")},
             {"type": "product", "key": "PRD-1", "title": "Tablet",
              "data": {"part_number": "PRD-1", "description": "Tablet", "unit": "pcs"}}]
    versions = md.import_records(ADMIN, items)
    assert [(v.record.type_name, v.record.key, v.number, v.status) for v in versions] == [
        ("bom", "BOM-1", 1, "draft"), ("material", "MAT-1", 1, "draft"), ("product", "PRD-1", 1, "draft")]


def test_an_import_is_all_or_nothing_with_errors_per_record(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    audited = len(actions(engine))
    items = [{"type": "material", "key": "MAT-2", "title": "Starch", "data": material("MAT-2")},
             {"type": "material", "key": "MAT-3", "title": "Talc",
              "data": material("MAT-3", shelf_life_days=-1)},
             {"type": "bom", "key": "BOM-1", "title": "BoM", "data": bom("PRD-404", "MAT-2")},
             {"type": "spaceship", "key": "X", "data": {}},
             {"type": "material", "key": "MAT-2", "data": material("MAT-2")},
             "not an object"]
    with pytest.raises(ValidationFailed) as caught:
        md.import_records(ADMIN, items)
    assert caught.value.code == "import_failed"
    assert set(caught.value.errors) == {"/1/data/shelf_life_days", "/2/data/product", "/3/type", "/4/key",
                                        "/5"}
    assert count(engine, MasterDataRecord) == 1 and count(engine, MasterDataVersion) == 1
    assert len(actions(engine)) == audited


def test_importing_a_known_key_makes_a_new_draft(engine: Gmpflow, md: MasterData) -> None:
    effective_version(engine, "material", "MAT-1", material("MAT-1"))
    [version] = md.import_records(ADMIN, [{"type": "material", "key": "MAT-1", "title": "Lactose",
                                           "data": material("MAT-1", supplier="New")}])
    assert (version.number, version.status) == (2, "draft")


def test_demo_data_files_import_cleanly(engine: Gmpflow, md: MasterData) -> None:
    from engine import bootstrap

    items = bootstrap.demo_masterdata_items(engine, engine.clock.now().date())  # "@today+180d": from today
    assert len(md.import_records(ADMIN, items)) == len(items)
    assert count(engine, MasterDataType) == len(SHIPPED_TYPES)


def test_demo_master_data_is_loaded_effective_by_the_bootstrap_rule_once(engine: Gmpflow,
                                                                         md: MasterData) -> None:
    from engine import bootstrap

    versions = bootstrap.load_demo_masterdata(engine, ADMIN)
    assert {v.record.type_name for v in versions} == SHIPPED_TYPES
    with engine.db.read() as session:
        statuses = set(session.scalars(select(MasterDataVersion.status)))
        reasons = set(session.scalars(select(AuditEvent.reason).where(
            AuditEvent.action == "masterdata.version_effective")))
    assert statuses == {"effective"} and reasons == {"bootstrap demo data"}
    # dated from the day of init: the demo's press and people stay usable for the demo's batches
    today = engine.clock.now().date()
    assert (md.effective_at("equipment", "EQ-PRESS-02").data["calibration_due"]
            == (today + timedelta(days=180)).isoformat())
    assert (md.effective_at("personnel_qualification", "oscar.compression").data["valid_until"]
            == (today + timedelta(days=365)).isoformat())
    steps = md.effective_at("recipe", "SOP-PARA-500").data["steps"]
    assert len(steps) == 3 and [p["name"] for s in steps for p in s["parameters"] if p["critical"]] == [
        "granulate moisture"]
    assert len(md.effective_at("bom", "BOM-PARA-500").data["lines"]) == 2
    assert {md.effective_at("personnel_qualification", k).data["person"]
            for k in ("olivia.granulation", "oscar.compression")} == {"olivia", "oscar"}
    assert bootstrap.load_demo_masterdata(engine, ADMIN) == []
