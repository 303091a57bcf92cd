"""Which task of a batch's processes is the perform, verify, correction or disposition step is the user
task's model property ``record.role`` (gmp.record_roles), checked by lint; the batch record reads it, never an
element id. So a site may name its tasks as it likes: the same batch run on models whose ids are all renamed
yields the same batch record."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import func, select

from connectors.plugins import build_registry
from connectors.simulator.server import serve
from engine import identity
from engine.clock import FrozenClock
from engine.errors import DefinitionError
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import Deployment
from gmp.processes.batch_release.test_batch_release import AUDITED, CLOSE, REVIEWED
from gmp.processes.sop_execution.test_sop_execution import run_batch
from gmp.services import GmpServices
from tests import batch_support
from tests.batch_support import Plant
from tests.conftest import ADMIN, ROOT

PROCESSES = ROOT / "gmp" / "processes"
RENAMED = {  # every user task the batch record reads, given another id
    "perform": "carry_out_step", "confirm_value": "settle_limit", "assess_deviation": "judge_deviation",
    "qa_hold_decision": "qa_hold", "verify": "second_check", "record_yield": "enter_yield",
    "request_correction": "ask_for_correction", "approve_correction": "sign_off_correction",
    "review_record": "read_record", "review_audit_trail": "read_trail", "close_deviation": "settle_deviation",
    "decide": "dispose", "approve_reopen": "allow_reopen",
}
BACK = {new: old for old, new in RENAMED.items()}


def copy_process(name: str, folder: Path) -> Path:
    target = folder / name
    shutil.copytree(PROCESSES / name, target, ignore=shutil.ignore_patterns("*.py", "__*", "*.md"))
    return target


def rewrite(bpmn: Path, old: str, new: str) -> None:
    text = bpmn.read_text()
    assert old in text
    bpmn.write_text(text.replace(old, new))


@pytest.fixture
def engine(database: Database, clock: FrozenClock) -> Gmpflow:
    """An engine whose registry has the ERP and MES operations the batch's models call."""
    registry = build_registry({"GMPFLOW_ERP": "simulator", "GMPFLOW_ERP_URL": "http://127.0.0.1:9",
                               "GMPFLOW_MES_URL": "http://127.0.0.1:9"})
    gmp = Gmpflow(database, clock, registry=registry, change_control="off")
    gmp.record_start()
    return gmp


def problems(engine: Gmpflow, folder: Path) -> list[tuple[str, str | None]]:
    return [(p.code, p.element_id) for p in engine.lint([folder])]


def test_the_shipped_batch_models_give_every_role_the_batch_record_needs(engine: Gmpflow) -> None:
    for name in ("sop_step", "sop_execution", "sop_correction", "batch_release", "batch_reopen"):
        assert problems(engine, PROCESSES / name) == [], name


def test_lint_refuses_an_unknown_record_role(engine: Gmpflow, tmp_path: Path) -> None:
    folder = copy_process("sop_step", tmp_path)
    rewrite(folder / "sop_step.bpmn", 'name="record.role" value="verify"',
            'name="record.role" value="witness"')
    found = engine.lint([folder])
    assert ("unknown_record_role", "verify") in [(p.code, p.element_id) for p in found]
    assert any("witness" in p.message and "perform" in p.message for p in found)  # says what is allowed


def test_lint_refuses_a_batch_process_without_a_role_the_record_needs(engine: Gmpflow,
                                                                       tmp_path: Path) -> None:
    folder = copy_process("batch_release", tmp_path)
    rewrite(folder / "batch_release.bpmn", '<spiffworkflow:property name="record.role" value="disposition"/>',
            "")
    found = engine.lint([folder])
    assert [(p.code, p.element_id) for p in found] == [("record_role_missing", "batch_release")]
    assert "disposition" in found[0].message


def test_lint_refuses_a_record_role_on_anything_but_a_user_task(engine: Gmpflow, tmp_path: Path) -> None:
    folder = copy_process("sop_execution", tmp_path)
    rewrite(folder / "sop_execution.bpmn", '<spiffworkflow:property name="message.senders" value="engine"/>',
            '<spiffworkflow:property name="message.senders" value="engine"/>'
            '<spiffworkflow:property name="record.role" value="yield"/>')  # on the start event
    assert ("record_role_misplaced", "start") in problems(engine, folder)


def test_a_deployment_with_an_unknown_record_role_is_refused_and_nothing_is_stored(engine: Gmpflow,
                                                                                  tmp_path: Path) -> None:
    folder = copy_process("sop_correction", tmp_path)
    rewrite(folder / "sop_correction.bpmn", 'value="correction_approval"', 'value="approval"')
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(ADMIN, [folder])
    assert refused.value.code == "lint_failed"
    assert "unknown_record_role" in [p["code"] for p in refused.value.context["problems"]]
    with engine.db.read() as session:
        assert session.scalar(select(func.count(Deployment.id))) == 0


# -- renamed element ids ------------------------------------------------------------------------------------
def renamed_models(folder: Path) -> list[Path]:
    """The batch's processes with every task id the batch record reads renamed (its references too)."""
    copies = []
    for path in batch_support.PROCESSES:
        target = copy_process(path.name, folder)
        for bpmn in target.glob("*.bpmn"):
            text = bpmn.read_text()
            for old, new in RENAMED.items():  # ids, references to them, four-eyes rules naming them
                text = re.sub(rf'(?:(?<=id=")|(?<=Ref=")|(?<=Element=")|(?<=performer:)|(?<=signers:)){old}'
                              r'(?=[",\s])', new, text)
            bpmn.write_text(text)
        copies.append(target)
    return copies


class RenamedPlant(Plant):
    """Drives the batch by the tasks' old names: the scenario is the same, only the models differ."""

    def task(self, who: str, instance_id: int, element_id: str) -> Any:
        return super().task(who, instance_id, RENAMED.get(element_id, element_id))

    def open_elements(self, instance_id: int) -> list[str]:
        return sorted(BACK.get(e, e) for e in super().open_elements(instance_id))


Outcome = tuple[dict[str, Any], dict[str, Any], list[str]]


def released_batch_record(plant_class: type[Plant], folder: Path, sqlite_template: Path,
                          monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """A batch run, reviewed, its deviation closed and released; its record, its overview entry and the ids
    of its release's tasks."""
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "gmpflow.db")
    database, simulator = Database(f"sqlite:///{folder / 'gmpflow.db'}"), serve()
    monkeypatch.setenv("GMPFLOW_ARCHIVE_DIR", str(folder / "archive"))
    try:
        plant = plant_class(database, FrozenClock(), simulator, reload=False)
        plant.set_up()
        run_batch(plant)
        release = plant.instance("batch_release", "B-1")
        plant.complete("quinn", release, "review_record", REVIEWED, "Reviewed")
        plant.complete("quinn", release, "review_audit_trail", AUDITED, "Reviewed")
        plant.complete("quinn", release, "close_deviation", CLOSE, "Approved")
        plant.complete("quinn", release, "decide", {"disposition": "released", "decision_reason": "complete"},
                       "Released")
        record = plant.engine.pack(GmpServices).batch_record("B-1")
        overview = plant.engine.pack(GmpServices).batch_overview(["B-1"])["B-1"]
        task_ids = [t.element_id for t in plant.engine.list_tasks(plant.people["ada"], instance_id=release,
                                                                 state="completed")]
        return record, overview, task_ids
    finally:
        simulator.stop()
        database.dispose()


def without_run_ids(value: Any) -> Any:
    """The record less what differs between any two runs (SpiffWorkflow's random task guids, the hashes
    over them) and its audit trail (which names the elements, so it differs)."""
    if isinstance(value, dict):
        return {k: without_run_ids(v) for k, v in value.items()
                if k not in ("task_guid", "record_hash", "sha256", "audit_trail")}
    if isinstance(value, list):
        return [without_run_ids(v) for v in value]
    return value


@pytest.mark.slow
def test_a_batch_on_models_with_renamed_task_ids_has_the_same_batch_record(
        tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    shipped, shipped_overview, shipped_ids = released_batch_record(Plant, tmp_path / "shipped",
                                                                   sqlite_template, monkeypatch)
    monkeypatch.setattr(batch_support, "PROCESSES", renamed_models(tmp_path / "models"))
    renamed, renamed_overview, renamed_ids = released_batch_record(RenamedPlant, tmp_path / "renamed",
                                                                   sqlite_template, monkeypatch)
    assert "dispose" in renamed_ids and "decide" in shipped_ids  # the models did differ
    assert without_run_ids(renamed) == without_run_ids(shipped)
    assert renamed["disposition"]["status"] == "released" and renamed["steps"][1]["verified"]["by"] == "oscar"
    assert renamed_overview == shipped_overview
