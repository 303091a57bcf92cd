"""Roles and stewardship as data: a model or a master-data type may name any existing role and is refused,
with how to create it, when it names one that does not exist; every master-data type names its owner and
steward role; a new process version may not drop a signature or four-eyes rule its active version has, and
the change control of a process shows what the version changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.definitions.bundle import Bundle
from engine.errors import DefinitionError
from engine.masterdata import types
from engine.services import Gmpflow
from tests.conftest import ADMIN, ROOT
from tests.hostile_support import snapshot

HOW = "gmpflow roles add"


FOUR_EYES = '<spiffworkflow:property name="signature.distinctFrom" value="initiator"/>'


def signed_process(review: str = 'signature.meaning" value="Approved"', distinct: str = FOUR_EYES,
                   lane: str = "qa") -> Bundle:
    """One user task in lane ``lane``, signed as the properties given say."""
    return Bundle({"signed.bpmn": f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="http://x">
  <bpmn:process id="signed" name="Signed" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l" name="{lane}">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="{review}/>
        {distinct}
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""})


def test_a_lane_naming_an_unknown_role_is_refused_with_how_to_create_it(engine: Gmpflow) -> None:
    [problem] = engine.lint_bundle(signed_process(lane="weigher"))
    assert problem.code == "unknown_role" and "weigher" in problem.message and HOW in problem.message
    engine.add_role(ADMIN, "weigher", "Weighs dispensed material", "new dispensing SOP")
    assert engine.lint_bundle(signed_process(lane="weigher")) == []


def test_every_shipped_master_data_type_names_an_existing_owner_and_steward_role(engine: Gmpflow) -> None:
    roles = {r.name for r in engine.list_roles()}
    for name, (_, schema) in types.read_folder().items():
        owner = types.stewardship(schema)
        assert owner["owner_role"] in roles and owner["steward_role"] in roles, name
    assert types.stewardship(types.read_folder()["recipe"][1])["owner_role"] == "process_owner"


def _folder_with(tmp_path: Path, **root: str | None) -> Path:
    folder = tmp_path / "types"
    shutil.copytree(ROOT / "gmp" / "masterdata", folder, ignore=shutil.ignore_patterns("demo"))
    schema = json.loads((folder / "material.schema.json").read_text())
    for keyword, value in root.items():
        name = f"x-{keyword.replace('_', '-')}"
        if value is None:
            schema.pop(name)
        else:
            schema[name] = value
    (folder / "material.schema.json").write_text(json.dumps(schema))
    return folder


@pytest.mark.parametrize(("root", "code", "words"), [
    ({"owner_role": None}, "masterdata_schema_invalid", "x-owner-role"),
    ({"steward_role": None}, "masterdata_schema_invalid", "x-steward-role"),
    ({"owner_role": "material_owner"}, "unknown_role", HOW),
])
def test_a_type_without_an_owner_or_steward_or_naming_an_unknown_role_is_refused_and_nothing_is_stored(
        engine: Gmpflow, tmp_path: Path, root: dict[str, str | None], code: str, words: str) -> None:
    folder = _folder_with(tmp_path, **root)
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        engine.masterdata.load_types(ADMIN, folder)
    assert refused.value.code == code and words in refused.value.message
    assert "material.schema.json" in str(refused.value.context)
    assert snapshot(engine.db) == before


def test_a_type_may_name_a_role_an_admin_created(engine: Gmpflow, tmp_path: Path) -> None:
    engine.add_role(ADMIN, "material_owner", "Owns the material master", "new stewardship SOP")
    folder = _folder_with(tmp_path, owner_role="material_owner")
    loaded = {row.name: row for row, _ in engine.masterdata.load_types(ADMIN, folder)}
    assert types.stewardship(types.schema_of(loaded["material"]))["owner_role"] == "material_owner"


@pytest.mark.parametrize(("v2", "dropped"), [
    (signed_process(review='instructions" value="Look at it"', distinct=""), "signature.meaning"),
    (signed_process(distinct=""), "signature.distinctFrom"),
])
def test_a_new_version_that_drops_a_signature_or_four_eyes_rule_is_refused(
        engine: Gmpflow, v2: Bundle, dropped: str) -> None:
    engine.deploy(ADMIN, bundle=signed_process())
    problems = engine.lint_bundle(v2)
    assert {p.code for p in problems} == {"signature_dropped"}
    assert any(dropped in p.message and "Review" in p.message for p in problems)
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(ADMIN, bundle=v2)
    assert refused.value.code == "lint_failed" and "signature_dropped" in str(refused.value.context)
    assert snapshot(engine.db) == before
    # more meanings, or a stricter rule, are no drop
    stricter = signed_process(review='signature.meaning" value="Approved,Rejected"',
                              distinct='<spiffworkflow:property name="signature.distinctFrom" value="all"/>')
    assert engine.lint_bundle(stricter) == []
