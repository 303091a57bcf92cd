"""Activation only through change control (issue 14, point 3).

The operations that put a deployment or a master-data version in force (``deployment.activate``,
``masterdata.make_effective``, and ``change_request.open``, which claims a subject) run only inside an
instance of the installation's change-control process whose own version went live through change control
or came with ``gmpflow init``. Lint refuses them in any other process; at run time, called from anywhere
else, they refuse and the job opens an incident: the draft stays a draft. How a version went live is read
from its deployment row, trusted only while the row matches its seal (``engine.sealed``): a provenance
written or edited outside gmpflow is refused, and ``gmpflow audit verify`` names the row.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine import audit, integrity
from engine.bootstrap import deploy_shipped
from engine.clock import FrozenClock
from engine.config import Config
from engine.definitions.bundle import Bundle
from engine.errors import DefinitionError
from engine.operations import CallContext
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import AuditEvent, Deployment, Incident, Job, ProcessInstance
from gmp import governance
from tests.conftest import ADMIN, ROOT
from tests.hostile_support import snapshot

CHANGE_CONTROL = ROOT / "gmp" / "processes" / "change_control"
DEMO = ROOT / "gmp" / "processes" / "demo_approval"
CALLS = {
    "deployment.activate": '<spiffworkflow:parameter id="deployment_id" type="any" value="{target}"/>',
    "masterdata.make_effective": '<spiffworkflow:parameter id="version_id" type="any" value="{target}"/>',
    "change_request.open": ('<spiffworkflow:parameter id="kind" type="any" value="\'deployment\'"/>'
                            '<spiffworkflow:parameter id="deployment_id" type="any" value="{target}"/>'),
}
ROGUE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="t">
  <bpmn:process id="{key}" name="Rogue activation" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="put_live" name="Put the draft live">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="applied">
          <spiffworkflow:parameters>{params}</spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="put_live"/>
    <bpmn:sequenceFlow id="f2" sourceRef="put_live" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def rogue(key: str, operation: str = "deployment.activate", target: int = 1) -> dict[str, str]:
    return {f"{key}.bpmn": ROGUE.format(key=key, operation=operation,
                                        params=CALLS[operation].format(target=target))}


def a_draft(engine: Gmpflow, tmp_path: Path) -> Deployment:
    """A new version of the demo process, stored as a draft (v1 is live)."""
    engine.deploy(ADMIN, [DEMO])
    changed = (DEMO / "demo_approval.bpmn").read_text().replace('name="Approve the request"',
                                                                 'name="Approve the request (v2)"')
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "demo_approval.bpmn").write_text(changed)
    draft, _ = engine.deploy(ADMIN, [tmp_path / "v2"], activate=False)
    assert draft.status == "draft"
    return draft


def run_rogue(engine: Gmpflow, key: str) -> tuple[ProcessInstance, list[Incident], list[Job]]:
    started = engine.start_instance(ADMIN, key)
    while engine.run_jobs_once():
        pass
    with engine.db.read() as session:
        return (session.get(ProcessInstance, started.id),
                list(session.scalars(select(Incident).where(Incident.instance_id == started.id))),
                list(session.scalars(select(Job).where(Job.instance_id == started.id))))


def insert_directly(db: Database, key: str, files: dict[str, str], activated_via: str | None,
                    approved_by: int | None = None, sealed_as_found: bool = False) -> int:
    """A live deployment row written straight into the database: no lint, no audit event, no MAC.
    ``sealed_as_found``: a row that was there before the audit key, sealed as found when the key came
    (``engine.sealed.seal_unsealed``)."""
    with db.unit_of_work() as session:
        row = Deployment(key=key, version=99, name=key, status="active", content_hash="0" * 64, files=files,
                         created_by="mallory", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                         activated_at=datetime(2026, 1, 1, tzinfo=timezone.utc), activated_via=activated_via,
                         approved_by_instance_id=approved_by)
        if sealed_as_found:
            row.content_hash = Bundle(files).content_hash
            integrity.seal_deployment(integrity.key_of(session), row)
        session.add(row)
        session.flush()
        return row.id


# -- lint ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", sorted(CALLS))
@pytest.mark.parametrize("mode", ["off", "required"])
def test_lint_refuses_an_activation_operation_in_any_process_but_change_control(
        database: Database, clock: FrozenClock, tmp_path: Path, operation: str, mode: str) -> None:
    engine = Gmpflow(database, clock, change_control=mode)
    engine.record_start()
    before = snapshot(database)
    (tmp_path / "rogue").mkdir()
    (tmp_path / "rogue" / "rogue.bpmn").write_text(rogue("rogue", operation)["rogue.bpmn"])
    found = [p for p in engine.lint([tmp_path / "rogue"]) if p.code == "operation_not_permitted"]
    assert [(p.element_id, p.file) for p in found] == [("put_live", "rogue.bpmn")]
    assert "may only be called by the process 'change_control'" in found[0].message
    with pytest.raises(DefinitionError):
        engine.deploy(ADMIN, [tmp_path / "rogue"])
    assert snapshot(database) == before


def test_the_change_control_key_is_a_setting_and_lint_follows_it(
        database: Database, clock: FrozenClock, tmp_path: Path) -> None:
    config = Config.from_environ({"GMPFLOW_CHANGE_CONTROL_PROCESS": "site_change_control"})
    engine = Gmpflow(database, clock, change_control="off", config=config)
    for key, refused in (("site_change_control", False), ("change_control", True)):
        (tmp_path / key).mkdir()
        (tmp_path / key / f"{key}.bpmn").write_text(rogue(key)[f"{key}.bpmn"])
        codes = {p.code for p in engine.lint([tmp_path / key])}
        assert ("operation_not_permitted" in codes) is refused


def test_the_shipped_change_control_passes_lint(engine: Gmpflow) -> None:
    assert engine.lint([CHANGE_CONTROL]) == []


# -- run time ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "activated_via", "approver"), [
    ("rogue", "direct", None),                           # another process, written past lint
    ("change_control", "init", None),                    # the key made to look right, "init" forged
    ("change_control", "change_control", "demo"),        # "approved" by an instance of another process
], ids=["other-process", "forged-init", "forged-approval"])
def test_an_activation_from_outside_a_governed_change_control_opens_an_incident_and_the_draft_stays(
        engine: Gmpflow, tmp_path: Path, key: str, activated_via: str, approver: str | None) -> None:
    draft = a_draft(engine, tmp_path)
    approved_by = engine.start_instance(ADMIN, "demo_approval").id if approver else None
    insert_directly(engine.db, key, rogue(key, target=draft.id), activated_via, approved_by)
    instance, incidents, jobs = run_rogue(engine, key)
    assert instance.status == "failed"
    assert [j.state for j in jobs] == ["failed"] and jobs[0].attempts == 1  # refused, not retried
    assert len(incidents) == 1
    assert ("may make a version effective" if key == "rogue" else "did not go live through change control"
            ) in incidents[0].error
    assert engine.get_deployment(draft.id).status == "draft"
    with engine.db.read() as session:
        assert session.scalar(select(AuditEvent.seq).where(
            AuditEvent.object_type == "deployment", AuditEvent.object_id == str(draft.id),
            AuditEvent.action.in_(["deployment.active", "deployment.in_review"]))) is None
        assert session.scalar(select(AuditEvent.seq).where(AuditEvent.action == "incident.opened"))


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_a_change_control_version_deployed_with_change_control_off_cannot_activate_once_it_is_required(
        database: Database, clock: FrozenClock, tmp_path: Path, operation: str) -> None:
    off = Gmpflow(database, clock, change_control="off")
    off.record_start()
    draft = a_draft(off, tmp_path)
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / "change_control.bpmn").write_text(
        rogue("change_control", operation, draft.id)["change_control.bpmn"])
    cc, _ = off.deploy(ADMIN, [tmp_path / "cc"])  # lint passes: the key is right; live directly (off)
    assert (cc.status, cc.activated_via) == ("active", "direct")
    required = Gmpflow(database, clock, change_control="required")
    required.record_start()
    instance, incidents, _ = run_rogue(required, "change_control")
    assert instance.status == "failed" and len(incidents) == 1
    assert "did not go live through change control nor with init" in incidents[0].error
    assert required.get_deployment(draft.id).status == "draft"


def test_init_records_how_each_shipped_version_went_live(engine: Gmpflow) -> None:
    dep, created = deploy_shipped(engine, ADMIN, CHANGE_CONTROL)
    assert created
    assert (dep.status, dep.activated_via, dep.approved_by_instance_id) == ("active", "init", None)
    with engine.db.read() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "deployment.active",
                                                        AuditEvent.object_id == str(dep.id)))
    assert event is not None and event.after["activated_via"] == "init"
    assert event.reason == "bootstrap: first deployment of a shipped model"


def test_with_change_control_off_deploy_still_activates_directly(engine: Gmpflow) -> None:
    dep, _ = engine.deploy(ADMIN, [DEMO])
    assert (dep.status, dep.activated_via) == ("active", "direct")


def test_a_version_that_came_with_init_before_provenance_was_recorded_still_governs(engine: Gmpflow,
                                                                                   tmp_path: Path) -> None:
    """A database upgraded by migration 0006: the activation event has no ``activated_via`` yet; its
    bootstrap reason says init, as the migration derived it for the row, which the audit key's introduction
    (0009 on) then sealed as found. The decision reads the sealed row, not the event."""
    draft = a_draft(engine, tmp_path)
    dep_id = insert_directly(engine.db, "change_control", rogue("change_control", target=draft.id), "init",
                             sealed_as_found=True)
    with engine.db.unit_of_work() as session:
        audit.record(session, ADMIN, "deployment.active", "deployment", dep_id, "change_control v99",
                     at=engine.clock.now(), after={"status": "active"},
                     reason="bootstrap: first deployment of a shipped model")
    _, _, [job] = run_rogue(engine, "change_control")
    # past the governance check: refused only because this instance never claimed the draft
    assert "is not claimed by change request" in (job.last_error or "")
    assert engine.get_deployment(draft.id).status == "draft"


# -- the provenance is the sealed row's ----------------------------------------------------------------------
def a_change_control(database: Database, clock: FrozenClock, tmp_path: Path, went_live: str, target: int
                     ) -> Deployment:
    """A change-control version whose service task activates ``target``, gone live ``via`` init (as
    ``gmpflow init`` deploys it) or directly (deployed with change control off)."""
    off = Gmpflow(database, clock, change_control="off")
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / "change_control.bpmn").write_text(rogue("change_control", target=target)[
        "change_control.bpmn"])
    cc = deploy_shipped(off, ADMIN, tmp_path / "cc")[0] if went_live == "init" else off.deploy(
        ADMIN, [tmp_path / "cc"])[0]
    assert (cc.status, cc.activated_via) == ("active", went_live)
    return cc


def edit(engine: Gmpflow, deployment_id: int, **values: object) -> None:
    """Columns of a deployment row set straight in the database (SQLAlchemy Core: no engine, no MAC)."""
    with engine.db.engine.begin() as connection:
        connection.execute(update(Deployment).where(Deployment.id == deployment_id).values(**values))


APPROVER = "an instance of the change-control process"
# (how the version went live, what is set in its row straight in the database): each edited row would pass
# as governed if its columns were trusted without its seal (the last: a column no seal covered before 0016)
FORGED_PROVENANCE: dict[str, tuple[str, dict[str, object]]] = {
    "direct made init": ("direct", {"activated_via": "init"}),
    "direct made approved": ("direct", {"activated_via": "change_control",
                                        "approved_by_instance_id": APPROVER}),
    "init, activation time moved": ("init", {"activated_at": datetime(2026, 1, 2, tzinfo=timezone.utc)}),
}


@pytest.mark.parametrize("case", FORGED_PROVENANCE, ids=list(FORGED_PROVENANCE))
def test_a_deployment_whose_provenance_is_edited_in_the_database_is_refused_and_verify_names_it(
        database: Database, clock: FrozenClock, tmp_path: Path, case: str) -> None:
    went_live, edits = FORGED_PROVENANCE[case]
    off = Gmpflow(database, clock, change_control="off")
    off.record_start()
    draft = a_draft(off, tmp_path)
    cc = a_change_control(database, clock, tmp_path, went_live, draft.id)
    required = Gmpflow(database, clock, change_control="required")
    required.record_start()
    approver = required.start_instance(ADMIN, "change_control").id
    edit(required, cc.id, **{name: approver if value == APPROVER else value for name, value in edits.items()})
    instance, incidents, jobs = run_rogue(required, "change_control")
    assert instance.status == "failed" and [j.state for j in jobs] == ["failed"] and jobs[0].attempts == 1
    [incident] = incidents
    assert "did not go live through change control nor with init" in incident.error
    assert f"its deployment row {cc.id} fails its seal" in incident.error
    assert "`gmpflow audit verify` names the row" in incident.error
    assert required.get_deployment(draft.id).status == "draft"
    report = required.verify_audit()
    assert (report.ok, report.table, report.row_id) == (False, "deployment", str(cc.id))


def test_the_refusal_of_an_edited_provenance_is_change_control_required(engine: Gmpflow, tmp_path: Path
                                                                        ) -> None:
    """The governance check itself, as each governed operation calls it: a stable code and the row named."""
    draft = a_draft(engine, tmp_path)
    cc = a_change_control(engine.db, engine.clock, tmp_path, "init", draft.id)
    caller = engine.start_instance(ADMIN, "change_control").id
    context = CallContext(idempotency_key="governed", instance_id=caller, attempt=1)
    with engine.db.read() as session:
        governance.check_governed(engine, session, context)  # as init left it: governed
    edit(engine, cc.id, approved_by_instance_id=caller)
    with engine.db.read() as session, pytest.raises(governance.NotGoverned) as refused:
        governance.check_governed(engine, session, context)
    assert refused.value.code == "change_control_required"
    assert refused.value.context == {"deployment_id": cc.id}


def test_a_change_control_that_came_with_init_still_makes_a_claimed_draft_active(
        database: Database, clock: FrozenClock, tmp_path: Path) -> None:
    """The governed path, with change control required: the shipped change control (init) claims the draft
    and activates it; every row stays sealed."""
    from tests.test_change_request_holder import a_draft as shipped_and_a_draft
    from tests.test_change_request_holder import change_request, claim, context

    required = Gmpflow(database, clock, change_control="required")
    required.record_start()
    draft = shipped_and_a_draft(required, tmp_path)
    holder = change_request(required)
    assert claim(required, holder, draft)["accepted"] is True
    answer = governance.activate(required, {"deployment_id": draft}, context(holder))
    assert (answer["status"], answer["approved_by_instance_id"]) == ("active", holder)
    assert required.get_deployment(draft).activated_via == "change_control"
    assert required.verify_audit().ok


def test_an_instance_moved_onto_the_change_control_in_the_database_is_refused(engine: Gmpflow, tmp_path: Path
                                                                              ) -> None:
    """An ordinary instance whose row is edited to run the change control's version: its seal fails, so it
    makes nothing effective, and verify names the row."""
    draft = a_draft(engine, tmp_path)
    cc = a_change_control(engine.db, engine.clock, tmp_path, "init", draft.id)
    ordinary = engine.start_instance(ADMIN, "demo_approval").id  # v1, live
    context = CallContext(idempotency_key="moved", instance_id=ordinary, attempt=1)
    with engine.db.read() as session, pytest.raises(governance.NotGoverned):
        governance.check_governed(engine, session, context)  # as gmpflow wrote it: not a change control
    with engine.db.unit_of_work() as session:
        session.execute(update(ProcessInstance).where(ProcessInstance.id == ordinary)
                        .values(deployment_id=cc.id, process_key="change_control"))
    with engine.db.read() as session, pytest.raises(governance.NotGoverned) as refused:
        governance.check_governed(engine, session, context)
    assert refused.value.code == "change_control_required"
    assert refused.value.context == {"instance_id": ordinary}
    assert "its row fails its seal" in str(refused.value)
    report = engine.verify_audit()
    assert (report.ok, report.table, report.row_id) == (False, "process_instance", str(ordinary))
