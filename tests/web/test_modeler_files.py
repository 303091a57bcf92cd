"""Files stay standard BPMN 2.0: a diagram drawn in the desktop Camunda Modeler (its ``camunda:`` attributes
and extension elements, its BPMNDI) lints, is saved through the web modeler's route as a draft, and runs;
the draft is never active while change control is required. A real file from the Camunda Modeler
(``tests/bpmn/camunda_modeler``) lints with one finding per part gmpflow cannot run; its browser round trip is
in ``test_camunda_modeler_file.py``."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask

from engine import identity
from engine.errors import DefinitionError
from engine.services import Gmpflow
from tests.conftest import ADMIN, FIXTURES
from tests.session_support import browser_session
from webapp import create_app

CAMUNDA = FIXTURES / "camunda_style"
CAMUNDA_MODELER_FILE = FIXTURES / "camunda_modeler" / "invoice.v2.bpmn"
FINDINGS = {  # element: (code, line) of what the Camunda example carries that gmpflow does not run
    "Approver": ("unknown_role", 12), "teamAssistant": ("unknown_role", 16),
    "Accountant": ("unknown_role", 23),
    "invoiceNotApproved": ("foreign_expression", 61), "invoiceApproved": ("foreign_expression", 66),
    "clarificationNotSuccessful": ("foreign_expression", 69),
    "clarificationSuccessful": ("foreign_expression", 72),
    "DataStoreReference_1": ("unsupported_element", 74), "assignApprover": ("decision_not_found", 75),
    "archiveInvoice": ("missing_operation", 91), "invoiceClarification": ("missing_called_element", 96)}


@pytest.fixture
def app(engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(identity, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    engine.add_user(ADMIN, "pete", "Pete Process-Owner", "correct horse battery", ["process_owner"])
    return create_app({"SECRET_KEY": "files", "SESSION_COOKIE_SECURE": False, "WTF_CSRF_ENABLED": False},
                      engine=engine)


def signed_in(app: Flask, engine: Gmpflow, username: str) -> Any:
    client = app.test_client()
    browser_session(app, client, engine, username)
    return client


def test_a_camunda_modeler_file_lints_saves_as_a_draft_through_the_modeler_and_runs(app: Flask,
                                                                                     engine: Gmpflow) -> None:
    assert engine.lint([CAMUNDA]) == []
    client = signed_in(app, engine, "pete")
    files = {p.name: p.read_text() for p in CAMUNDA.iterdir()}
    checked = client.post("/modeler/lint", json={"files": files})
    assert checked.status_code == 200 and (checked.json["ok"], checked.json["problems"]) == (True, [])
    ignored = {(n["element_id"], n["message"]) for n in checked.json["notices"]}  # named, never refused
    assert ("camunda_style", "gmpflow does not run camunda:historyTimeToLive, camunda:properties of this "
            "element: ignored.") in ignored
    saved = client.post("/modeler/save", json={"files": files})
    assert saved.status_code == 200, saved.json
    assert (saved.json["key"], saved.json["version"], saved.json["status"]) == ("camunda_style", 1, "draft")
    named = {n["element_id"] for n in checked.json["notices"]}
    assert {n["element_id"] for n in saved.json["notices"]} == named
    stored = engine.modeler_view(saved.json["id"])
    assert stored["files"]["bpmn"]["camunda_style.bpmn"] == files["camunda_style.bpmn"]  # byte for byte
    assert "demo_request.form" in stored["files"]["form"]  # the referenced form joined the bundle
    assert client.post("/modeler/save", json={"files": files}).json["created"] is False  # same content
    engine.activate_deployment(ADMIN, saved.json["id"], "test: change control approved")
    started = engine.start_instance(ADMIN, "camunda_style", "LC-1", {"quantity": 5})
    assert engine.instance_detail(started.id)["tasks"][0].form_id == "demo_request"
    page = client.get(f"/modeler/{saved.json['id']}")
    assert page.status_code == 200 and b"camunda_style.bpmn" in page.data


def test_the_modeler_reports_lint_problems_with_element_and_line_and_stores_nothing(app: Flask,
                                                                                     engine: Gmpflow) -> None:
    client = signed_in(app, engine, "pete")
    text = (CAMUNDA / "camunda_style.bpmn").read_text().replace(
        '<spiffworkflow:property name="formId" value="demo_request" />',
        '<spiffworkflow:property name="formId" value="no_such_form" />'
        '<spiffworkflow:property name="signature.meaning" value="Blessed" />')
    refused = client.post("/modeler/save", json={"files": {"camunda_style.bpmn": text}})
    assert refused.status_code == 400 and refused.json["ok"] is False
    assert {(p["element_id"], p["code"]) for p in refused.json["problems"]} == {
        ("Activity_clear_line", "unknown_form"), ("Activity_clear_line", "unknown_signature_meaning")}
    assert all(p["file"] == "camunda_style.bpmn" and p["line"] for p in refused.json["problems"])
    assert not [d for d in engine.definitions() if d.key == "camunda_style"]
    bad = client.post("/modeler/save", json={"files": {"../evil.bpmn": text}})
    assert bad.status_code == 400 and bad.json["problems"][0]["code"] == "bundle_malformed"


def test_only_process_owners_save_and_the_admin_sees_the_modeler_read_only(app: Flask,
                                                                           engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "ada", "Ada Admin", "correct horse battery", ["admin"])
    dep, _ = engine.deploy(ADMIN, [CAMUNDA])
    admin = signed_in(app, engine, "ada")
    assert admin.post("/modeler/save", json={"files": {}}).status_code == 403
    page = admin.get(f"/modeler/{dep.id}").get_data(as_text=True)
    assert "Read only" in page and "save-button" not in page and '"canEdit": false' in page


def test_a_file_the_camunda_modeler_produced_lints_with_a_finding_for_each_part_gmpflow_cannot_run(
        engine: Gmpflow) -> None:
    problems = engine.lint([CAMUNDA_MODELER_FILE])
    assert {p.element_id: (p.code, p.line) for p in problems} == FINDINGS  # all at once, each where it is
    assert len(problems) == len(FINDINGS) and {p.file for p in problems} == {"invoice.v2.bpmn"}
    assert "'${approved}' is a Camunda expression" in next(p.message for p in problems
                                                            if p.element_id == "invoiceApproved")
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(ADMIN, [CAMUNDA_MODELER_FILE])
    assert refused.value.code == "lint_failed" and not [d for d in engine.definitions() if d.key == "invoice"]


def test_files_opened_from_disk_reach_the_editor_as_data_and_nothing_is_stored(app: Flask,
                                                                               engine: Gmpflow) -> None:
    client = signed_in(app, engine, "pete")
    text = CAMUNDA_MODELER_FILE.read_text().replace("Approve the invoice (or not).",
                                                    "</script><script>alert(1)</script>")
    page = client.post("/modeler/open", content_type="multipart/form-data", data={"files": [
        (io.BytesIO(text.encode()), "invoice.v2.bpmn"), (io.BytesIO(b"notes"), "notes.txt")]})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="modeler-config">(.*?)</script>', html,
                                  re.DOTALL).group(1))
    # a .txt is not opened
    assert config["files"] == {"bpmn": {"invoice.v2.bpmn": text}, "dmn": {}, "form": {}}
    assert "<script>alert(1)" not in html  # the file is data in the page, never markup
    assert config["deployment"] is None and "not saved" in html
    for name, body, reason in (("latin1.bpmn", "Prüfung".encode("latin-1"), "is not UTF-8 text"),
                               ("notes.txt", b"notes", "Choose at least one .bpmn file")):
        refused = client.post("/modeler/open", content_type="multipart/form-data",
                              data={"files": [(io.BytesIO(body), name)]})
        assert refused.status_code == 302 and refused.headers["Location"].endswith("/modeler")
        assert reason in client.get("/modeler").get_data(as_text=True)  # back to the list, with the reason
    assert not engine.definitions()
