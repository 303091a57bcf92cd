"""The change-control process, driven through the REST API as its users call it.

Every scenario runs twice (see ``tests.scenario_support.reload``): once on one engine, and once with
a new engine and web app built on the same database before every request and every worker run, so each
step restores the instance from its stored state. Workers run the service tasks and timers as jobs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from engine.audit import Actor
from engine.bootstrap import deploy_shipped
from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import AuditEvent
from gmp.governance import CLAIMED
from tests.api_support import Api
from tests.conftest import ADMIN, ROOT
from webapp import create_app

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"
PEOPLE = {"dana": ["data_steward"], "dave": ["data_steward"], "pete": ["process_owner"], "quinn": ["qa"],
          "sam": ["supervisor"], "rita": ["data_steward", "qa"], "olivia": ["operator"],
          # they hold every role a change control asks for: only four eyes keeps them from approving
          "pat": ["process_owner", "data_steward", "qa", "supervisor"],
          "dora": ["data_steward", "process_owner", "qa", "supervisor"]}
RECIPE = {"product": "P-100", "description": "Granulation", "steps": [{
    "number": 1, "instruction": "Granulate the blend.",
    "parameters": [{"name": "impeller speed", "unit": "rpm", "target": 300, "low": 250, "high": 350,
                    "critical": True},
                   {"name": "mixing time", "unit": "min", "target": 5, "low": 4, "high": 6,
                    "critical": False}]}]}
MATERIAL = {"id": "MAT-1", "supplier": "Acme Chemicals", "unit_of_measure": "kg", "shelf_life_days": 365}


class ChangeControl:
    """The users and the worker of one scenario; with ``reload`` each call meets a freshly built engine."""

    def __init__(self, database: Database, clock: FrozenClock, reload: bool,
                 change_control: str = "off") -> None:
        self.database, self.clock, self.reload, self.mode = database, clock, reload, change_control
        self.tokens: dict[str, str] = {}
        self._api: Api | None = None

    @property
    def engine(self) -> Gmpflow:
        return self.api.app.extensions["gmpflow"]

    @property
    def api(self) -> Api:
        if self._api is None or self.reload:
            engine = Gmpflow(self.database, self.clock, change_control=self.mode)
            app: Flask = create_app({"TESTING": True, "SECRET_KEY": "test-secret"}, engine=engine)
            self._api = Api(app, app.test_client())
            self._api.tokens, self._api._created = self.tokens, set(PEOPLE)
        return self._api

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> TestResponse:
        return self.api.call(method, f"/api/v1{path}", as_=who, **kwargs)

    def ok(self, method: str, path: str, who: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, who, **kwargs)
        assert response.status_code == status, response.json
        return response.json

    # -- the requester, the approvers, the worker ------------------------------------------------------------
    def request(self, who: str, variables: dict[str, Any]) -> int:
        """Start a change request and fill in its request form with the same values."""
        started = self.ok("POST", "/process-definitions/change_control/instances", who, 201,
                          json={"variables": variables})
        element = ("request_deployment" if variables.get("subject_kind") == "deployment"
                   else "request_masterdata")
        self.complete(who, started["id"], element,
                      {k: v for k, v in variables.items() if k != "subject_kind"})
        self.run_jobs()
        return int(started["id"])

    def open_tasks(self, who: str, instance_id: int) -> list[dict[str, Any]]:
        return self.ok("GET", f"/tasks?instance_id={instance_id}", who)

    def task_id(self, who: str, instance_id: int, element_id: str) -> int:
        found = [t["id"] for t in self.open_tasks(who, instance_id) if t["element_id"] == element_id]
        assert len(found) == 1, [t["element_id"] for t in self.open_tasks(who, instance_id)]
        return found[0]

    def complete(self, who: str, instance_id: int, element_id: str, data: dict[str, Any],
                 meaning: str | None = None, status: int = 200) -> Any:
        body: dict[str, Any] = {"data": data}
        if meaning:
            body["signature"] = {"username": who, "password": PASSWORD, "meaning": meaning}
        return self.ok("POST", f"/tasks/{self.task_id(who, instance_id, element_id)}/complete", who, status,
                       json=body)

    def assess(self, instance_id: int) -> None:
        self.complete("dana", instance_id, "assess_impact", {
            "impacted_products": "P-100", "open_orders": "none", "training_needed": False,
            "validation_needed": False})

    def decide(self, who: str, instance_id: int, decision: str, comment: str = "") -> None:
        role = {"quinn": "qa", "rita": "qa", "pete": "owner"}.get(who, "supervisor")
        self.complete(who, instance_id, f"approve_{role}",
                      {f"{role}_decision": decision, f"{role}_comment": comment}, meaning=decision)
        self.run_jobs()

    def verify(self, instance_id: int) -> None:
        self.complete("quinn", instance_id, "verify", {"verified_in_place": True}, meaning="Verified")

    def advance(self, **delta: float) -> None:
        """Time passes (the injected clock); people sign in again the next time (tokens last hours)."""
        self.clock.advance(**delta)
        self.tokens.clear()

    def run_jobs(self) -> int:
        total = 0
        while (ran := Gmpflow(self.database, self.clock, change_control=self.mode).run_jobs_once()
               if self.reload else self.engine.run_jobs_once()):
            total += ran
        return total

    # -- what people read ----------------------------------------------------------------------------------
    def instance(self, instance_id: int) -> dict[str, Any]:
        return self.ok("GET", f"/instances/{instance_id}", "quinn")

    def elements(self, who: str, instance_id: int) -> list[str]:
        return sorted(t["element_id"] for t in self.open_tasks(who, instance_id))

    def record(self, type_name: str, key: str) -> dict[str, Any]:
        return self.ok("GET", f"/masterdata/types/{type_name}/records/{key}", "quinn")

    def statuses(self, type_name: str, key: str) -> dict[int, str]:
        return {v["number"]: v["status"] for v in self.record(type_name, key)["versions"]}

    def propose(self, type_name: str, key: str, data: dict[str, Any]) -> int:
        """A data steward's new draft, submitted for review; its number."""
        path = f"/masterdata/types/{type_name}/records/{key}/versions"
        number = self.ok("POST", path, "dana", 201, json={"data": data})["number"]
        self.ok("POST", f"{path}/{number}/submit", "dana")
        return int(number)


@pytest.fixture
def cc(engine: Gmpflow, database: Database, clock: FrozenClock, reload: bool) -> ChangeControl:
    """The shipped types, the change-control process, its people, a material and a recipe in force."""
    engine.masterdata.load_types(ADMIN)
    deploy_shipped(engine, ADMIN, HERE)  # as `gmpflow init` does: the change control rests on it
    for username, roles in PEOPLE.items():
        engine.add_user(ADMIN, username, username.title(), PASSWORD, roles)
    for type_name, key, data in (("material", "MAT-1", MATERIAL), ("product", "P-100", {
            "part_number": "P-100", "description": "Tablet", "unit": "pcs"}), ("recipe", "R-100", RECIPE)):
        version = engine.masterdata.create_record(ADMIN, type_name, key, key, data)
        engine.masterdata.submit(ADMIN, type_name, key, 1)
        # change control is off in this set-up
        engine.masterdata.make_effective(ADMIN, version.id, None, None)
    return ChangeControl(database, clock, reload)


def masterdata_request(key: str = "MAT-1", number: int = 2, type_name: str = "material", **more: Any
                       ) -> dict[str, Any]:
    return {"subject_kind": "masterdata", "record_type": type_name, "record_key": key,
            "version_number": number, "reason": "The supplier changed.", "product_impact": "none",
            "effective_date": "2026-01-05", **more}


def claims(cc: ChangeControl) -> list[AuditEvent]:
    with cc.engine.db.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == CLAIMED)))


def test_a_minor_change_needs_qa_only_and_is_in_force_once_verified(cc: ChangeControl) -> None:
    number = cc.propose("material", "MAT-1", {**MATERIAL, "supplier": "Beta Pharma Supplies"})
    cr = cc.request("dana", masterdata_request(number=number))
    variables = cc.instance(cr)["variables"]
    assert variables["change_class"] == "minor" and variables["approvers"] == ["qa"]
    assert variables["diff"]["changed_paths"] == ["/supplier"]
    cc.assess(cr)
    assert cc.elements("quinn", cr) == ["approve_qa"] and cc.elements("sam", cr) == []
    cc.decide("quinn", cr, "Approved")
    assert cc.statuses("material", "MAT-1") == {1: "superseded", 2: "effective"}
    effective = cc.ok("GET", "/masterdata/types/material/records/MAT-1/effective", "quinn")
    assert (effective["change_request_instance_id"] == cr
            and effective["data"]["supplier"] == "Beta Pharma Supplies")
    assert cc.instance(cr)["variables"]["notified"]["subject"] == "material MAT-1 v2"
    cc.verify(cr)
    assert cc.instance(cr)["status"] == "completed"


def test_a_critical_change_needs_qa_the_production_head_and_the_types_owner_in_parallel(
        cc: ChangeControl) -> None:
    changed = {**RECIPE, "steps": [{**RECIPE["steps"][0], "parameters": [
        {**RECIPE["steps"][0]["parameters"][0], "target": 320}, RECIPE["steps"][0]["parameters"][1]]}]}
    number = cc.propose("recipe", "R-100", changed)
    cr = cc.request("dana", masterdata_request("R-100", number, "recipe", reason="Faster granulation."))
    variables = cc.instance(cr)["variables"]
    assert variables["diff"]["changes_critical"] is True and variables["change_class"] == "critical"
    cc.assess(cr)
    assert cc.elements("quinn", cr) == ["approve_qa"] and cc.elements("sam", cr) == ["approve_supervisor"]
    assert cc.elements("pete", cr) == ["approve_owner"]  # recipe.schema.json: x-owner-role process_owner
    cc.decide("sam", cr, "Approved")
    cc.decide("pete", cr, "Approved")
    assert cc.statuses("recipe", "R-100")[number] == "in_review"  # QA has not approved yet
    cc.decide("quinn", cr, "Approved")
    assert cc.statuses("recipe", "R-100") == {1: "superseded", 2: "effective"}
    meanings = sorted((s["printed_name"], s["meaning"]) for s in cc.instance(cr)["signatures"])
    assert meanings == [("Pete", "Approved"), ("Quinn", "Approved"), ("Sam", "Approved")]


def test_a_change_to_limits_only_is_major_and_needs_qa(cc: ChangeControl) -> None:
    changed = {**RECIPE, "steps": [{**RECIPE["steps"][0], "parameters": [
        RECIPE["steps"][0]["parameters"][0], {**RECIPE["steps"][0]["parameters"][1], "high": 7}]}]}
    cr = cc.request("dana", masterdata_request("R-100", cc.propose("recipe", "R-100", changed), "recipe"))
    variables = cc.instance(cr)["variables"]
    assert (variables["change_class"], variables["approvers"]) == ("major", ["qa"])
    assert variables["diff"]["changes_limits"] is True and variables["diff"]["changes_critical"] is False


def test_a_rejection_returns_the_request_with_the_comment_and_it_can_be_resubmitted(
        cc: ChangeControl) -> None:
    number = cc.propose("material", "MAT-1", {**MATERIAL, "supplier": "Beta Pharma Supplies"})
    cr = cc.request("dana", masterdata_request(number=number))
    cc.assess(cr)
    cc.decide("quinn", cr, "Rejected", "Beta is not a qualified supplier yet.")
    assert cc.elements("dana", cr) == ["request_masterdata"]
    assert cc.instance(cr)["variables"]["qa_comment"] == "Beta is not a qualified supplier yet."
    assert cc.statuses("material", "MAT-1") == {1: "effective", 2: "in_review"}
    resubmitted = {k: v for k, v in masterdata_request(number=number).items() if k != "subject_kind"}
    cc.complete("dana", cr, "request_masterdata", {**resubmitted,  # the request form's fields only
                                                   "reason": "Beta was qualified on 2026-01-04."})
    cc.run_jobs()
    cc.assess(cr)
    cc.decide("quinn", cr, "Approved")
    assert cc.statuses("material", "MAT-1") == {1: "superseded", 2: "effective"}


def test_an_overdue_approval_escalates_to_a_supervisor_and_the_approval_stays_open(cc: ChangeControl) -> None:
    cr = cc.request("dana", masterdata_request(number=cc.propose("material", "MAT-1", {
        **MATERIAL, "shelf_life_days": 400})))
    cc.assess(cr)
    cc.advance(days=1, hours=23)
    cc.run_jobs()
    assert cc.elements("sam", cr) == []
    cc.advance(hours=1, minutes=1)  # P2D, the DMN's default for a minor change
    cc.run_jobs()
    assert cc.elements("sam", cr) == ["chase_approval"]
    cc.complete("sam", cr, "chase_approval", {"escalation_action": "Called Quinn; approves today."})
    cc.decide("quinn", cr, "Approved")
    assert cc.statuses("material", "MAT-1")[2] == "effective"


def test_the_requester_cannot_approve_their_own_change(cc: ChangeControl) -> None:
    cr = cc.request("rita", masterdata_request(number=cc.propose("material", "MAT-1", {
        **MATERIAL, "supplier": "Beta Pharma Supplies"})))
    cc.complete("rita", cr, "assess_impact", {"impacted_products": "P-100", "training_needed": False,
                                             "validation_needed": False})
    refused = cc.complete("rita", cr, "approve_qa", {"qa_decision": "Approved"}, meaning="Approved",
                          status=403)
    assert refused["code"] == "signature_four_eyes"
    assert cc.elements("quinn", cr) == ["approve_qa"]
    assert cc.statuses("material", "MAT-1")[2] == "in_review"


def test_a_future_effective_date_puts_the_version_in_force_only_when_its_timer_fires(
        cc: ChangeControl) -> None:
    number = cc.propose("material", "MAT-1", {**MATERIAL, "supplier": "Beta Pharma Supplies"})
    cr = cc.request("dana", masterdata_request(number=number, effective_date="2026-01-10"))
    cc.assess(cr)
    cc.decide("quinn", cr, "Approved")
    assert cc.statuses("material", "MAT-1") == {1: "effective", 2: "in_review"}
    cc.advance(days=4)  # 2026-01-09 08:00
    cc.run_jobs()
    assert cc.statuses("material", "MAT-1")[2] == "in_review"
    cc.advance(hours=16, seconds=1)
    cc.run_jobs()
    assert cc.statuses("material", "MAT-1") == {1: "superseded", 2: "effective"}
    version = cc.ok("GET", f"/masterdata/types/material/records/MAT-1/versions/{number}", "quinn")
    assert datetime.fromisoformat(version["effective_from"]) >= datetime(2026, 1, 10, tzinfo=timezone.utc)


def test_a_second_change_request_on_the_same_record_is_refused_and_overwrites_nothing(
        cc: ChangeControl) -> None:
    number = cc.propose("material", "MAT-1", {**MATERIAL, "supplier": "Beta Pharma Supplies"})
    first = cc.request("dana", masterdata_request(number=number))
    second = cc.request("dave", masterdata_request(number=number, reason="Same version, another request."))
    assert cc.elements("dave", second) == ["request_masterdata"]  # back to the requester, with why
    error = cc.instance(second)["variables"]["change"]["error"]
    assert error["code"] == "change_request_in_progress" and error["instance_id"] == first
    assert [c.after["instance_id"] for c in claims(cc)] == [first]
    cc.assess(first)
    cc.decide("quinn", first, "Approved")
    effective = cc.ok("GET", "/masterdata/types/material/records/MAT-1/effective", "quinn")
    assert effective["change_request_instance_id"] == first


@pytest.mark.parametrize(("case", "code"), [
    ("draft_not_submitted", "masterdata_version_draft"),
    ("unknown_record", "masterdata_record_not_found"),
    ("unknown_version", "masterdata_version_not_found"),
    ("already_effective", "masterdata_version_effective"),
])
def test_a_request_for_something_that_cannot_change_is_refused_and_nothing_is_stored(
        cc: ChangeControl, case: str, code: str) -> None:
    if case == "draft_not_submitted":
        path = "/masterdata/types/material/records/MAT-1/versions"
        invalid = cc.call("POST", path, "dana", json={"data": {**MATERIAL, "shelf_life_days": "long"}})
        assert invalid.status_code == 400 and invalid.json["code"] == "masterdata_invalid"
        assert "/shelf_life_days" in invalid.json["errors"]
        # a draft, not submitted
        cc.ok("POST", path, "dana", 201, json={"data": {**MATERIAL, "supplier": "Beta"}})
    request = {"draft_not_submitted": masterdata_request(number=2),
               "unknown_record": masterdata_request("MAT-404", 2),
               "unknown_version": masterdata_request(number=7),
               "already_effective": masterdata_request(number=1)}[case]
    cr = cc.request("dana", request)
    assert cc.instance(cr)["variables"]["change"]["error"]["code"] == code
    assert cc.elements("dana", cr) == ["request_masterdata"]
    assert claims(cc) == []
    assert cc.statuses("material", "MAT-1")[1] == "effective"


def test_a_draft_that_violates_its_schema_cannot_be_submitted(cc: ChangeControl) -> None:
    path = "/masterdata/types/recipe/records/R-100/versions"
    bad = {**RECIPE, "steps": [{"number": 0, "instruction": ""}]}
    refused = cc.call("POST", path, "dana", json={"data": bad})
    assert refused.status_code == 400 and refused.json["code"] == "masterdata_invalid"
    assert cc.statuses("recipe", "R-100") == {1: "effective"}


def test_a_new_process_version_goes_live_only_through_an_approved_change_control(
        engine: Gmpflow, database: Database, clock: FrozenClock, reload: bool, cc: ChangeControl,
        tmp_path: Path) -> None:
    demo = ROOT / "gmp" / "processes" / "demo_approval"
    engine.deploy(ADMIN, [demo])  # version 1, active (change control off at set-up)
    governed = ChangeControl(database, clock, reload, change_control="required")
    changed = (demo / "demo_approval.bpmn").read_text().replace('name="Approve the request"',
                                                                 'name="Approve the request (QA)"')
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "demo_approval.bpmn").write_text(changed)
    draft, created = governed.engine.deploy(ADMIN, [tmp_path / "v2"])
    assert created and draft.status == "draft"
    cr = governed.request("pete", {"subject_kind": "deployment", "deployment_id": draft.id,
                                   "reason": "Clearer task name.", "product_impact": "none",
                                   "effective_date": "2026-01-05"})
    assert governed.engine.get_deployment(draft.id).status == "in_review"
    assert governed.instance(cr)["variables"]["change_class"] == "major"
    diff = governed.instance(cr)["variables"]["diff"]  # every approver sees what the new version changes
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    assert [(c["before"], c["after"]) for c in diff["changes"] if c["path"].endswith("/name")] == [
        ("Approve the request", "Approve the request (QA)")]
    assert diff["elements"]["changed"] and not diff["elements"]["added"] and not diff["dropped_signatures"]
    governed.assess(cr)
    governed.decide("quinn", cr, "Approved")
    live = governed.engine.get_deployment(draft.id)
    assert (live.status, live.approved_by_instance_id) == ("active", cr)
    # demo_approval's start.roles: operators start requests
    started = governed.ok("POST", "/process-definitions/demo_approval/instances", "olivia", 201, json={})
    assert started["version"] == 2
    governed.verify(cr)
    assert governed.instance(cr)["status"] == "completed"



def failed_attempts(cc: ChangeControl, username: str) -> int:
    return next(u.failed_attempts for u in cc.engine.list_users() if u.username == username)


@pytest.mark.parametrize("part", ["author", "requester", "submitter"])
def test_the_author_or_submitter_of_a_process_change_never_approves_it_whatever_roles_they_hold(
        engine: Gmpflow, database: Database, clock: FrozenClock, reload: bool, cc: ChangeControl,
        tmp_path: Path, part: str) -> None:
    """The draft's author (``deployment.created_by``, as stored), whoever started the change control and
    whoever filled in its request are excluded by the model (``initiator``, ``performer:request_*``,
    ``variable:change.authors``); the conflict is told whatever password is sent and costs no attempt."""
    demo = ROOT / "gmp" / "processes" / "demo_approval"
    engine.deploy(ADMIN, [demo])
    governed = ChangeControl(database, clock, reload, change_control="required")
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "demo_approval.bpmn").write_text((demo / "demo_approval.bpmn").read_text().replace(
        'name="Approve the request"', 'name="Approve the request (QA)"'))
    author = Actor("pat", "Pat") if part == "author" else ADMIN
    draft, _ = governed.engine.deploy(author, [tmp_path / "v2"])
    request = {"subject_kind": "deployment", "deployment_id": draft.id, "reason": "Clearer task name.",
               "product_impact": "none", "effective_date": "2026-01-05"}
    starter = "pat" if part == "requester" else "pete"
    cr = governed.ok("POST", "/process-definitions/change_control/instances", starter, 201,
                     json={"variables": request})["id"]
    governed.complete("pat" if part == "submitter" else starter, cr, "request_deployment",
                      {k: v for k, v in request.items() if k != "subject_kind"})
    governed.run_jobs()
    assert governed.instance(cr)["variables"]["change"]["authors"] == [author.id]
    governed.assess(cr)
    for password in (PASSWORD, "not my password"):
        body = {"data": {"qa_decision": "Approved"},
                "signature": {"username": "pat", "password": password, "meaning": "Approved"}}
        refused = governed.call("POST", f"/tasks/{governed.task_id('pat', cr, 'approve_qa')}/complete", "pat",
                                json=body)
        assert (refused.status_code, refused.json["code"]) == (403, "signature_four_eyes")
    assert failed_attempts(governed, "pat") == 0
    assert governed.engine.get_deployment(draft.id).status == "in_review"
    governed.decide("quinn", cr, "Approved")
    assert governed.engine.get_deployment(draft.id).status == "active"


@pytest.mark.parametrize("part", ["author", "submitter"])
def test_the_author_or_submitter_of_a_master_data_version_never_approves_it(cc: ChangeControl, part: str
                                                                          ) -> None:
    path = "/masterdata/types/material/records/MAT-1/versions"
    number = cc.ok("POST", path, "dora" if part == "author" else "dana", 201,
                   json={"data": {**MATERIAL, "supplier": "Beta Pharma Supplies"}})["number"]
    cc.ok("POST", f"{path}/{number}/submit", "dora" if part == "submitter" else "dana")
    cr = cc.request("dana", masterdata_request(number=number))
    assert "dora" in cc.instance(cr)["variables"]["change"]["authors"]
    cc.assess(cr)
    refused = cc.complete("dora", cr, "approve_qa", {"qa_decision": "Approved"}, meaning="Approved",
                          status=403)
    assert refused["code"] == "signature_four_eyes"
    cc.decide("quinn", cr, "Approved")
    assert cc.statuses("material", "MAT-1")[number] == "effective"


def test_the_authors_a_change_control_excludes_cannot_be_overwritten_by_a_client(cc: ChangeControl) -> None:
    number = cc.propose("material", "MAT-1", {**MATERIAL, "supplier": "Beta Pharma Supplies"})
    cr = cc.request("dana", masterdata_request(number=number))
    refused = cc.call("POST", f"/tasks/{cc.task_id('dana', cr, 'assess_impact')}/complete", "dana",
                      json={"data": {"impacted_products": "P-100", "training_needed": False,
                                     "validation_needed": False, "change": {"authors": []}}})
    assert (refused.status_code, refused.json["code"]) == (422, "undeclared_field")
    assert cc.instance(cr)["variables"]["change"]["authors"] == ["dana"]


def test_an_approver_cannot_sign_a_meaning_other_than_their_decision(cc: ChangeControl) -> None:
    cr = cc.request("rita", masterdata_request(number=cc.propose("material", "MAT-1", {
        **MATERIAL, "supplier": "Gamma Pharma Supplies"})))
    cc.assess(cr)
    refused = cc.complete("quinn", cr, "approve_qa", {"qa_decision": "Rejected", "qa_comment": "no"},
                          meaning="Approved", status=400)
    assert refused["code"] == "guard_failed"
    assert cc.elements("quinn", cr) == ["approve_qa"]
