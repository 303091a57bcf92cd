"""The process owner's modeler: process versions, the bpmn-js/dmn-js/form-js editors, saving a draft
(linted by the engine), submitting a draft for change control; and the per-version process overview."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from engine.definitions.bundle import kind_of
from engine.definitions.properties import SIGNATURE_MEANINGS
from engine.errors import DefinitionError, GmpflowError
from engine.states import DeploymentStatus
from webapp.change_requests import IMPACTS, open_and_answer, request_fields
from webapp.guard import engine, principal, roles
from webapp.request_context import request_context

bp = Blueprint("modeler", __name__)
EDITORS = ("process_owner",)
READERS = ("process_owner", "admin")
OVERVIEW = ("admin", "qa", "supervisor", "process_owner")
MAX_FILES = 50


@bp.get("/modeler")
@roles(*READERS)
def processes() -> Any:
    return render_template("modeler/processes.html", processes=engine().process_versions())


@bp.get("/modeler/<id:deployment_id>")
@roles(*READERS)
def edit(deployment_id: int) -> Any:
    view = engine().modeler_view(deployment_id)
    dep = view["deployment"]
    config = {"files": view["files"], "templates": view["templates"], "meanings": list(SIGNATURE_MEANINGS),
              "deployment": {"id": dep.id, "key": dep.key, "version": dep.version, "status": dep.status},
              "canEdit": "process_owner" in principal().roles,
              "saveUrl": url_for("modeler.save"), "lintUrl": url_for("modeler.check")}
    return render_template("modeler/edit.html", dep=dep, config=config, impacts=IMPACTS,
                           today=engine().clock.now().date().isoformat(),
                           can_submit=dep.status == DeploymentStatus.DRAFT and config["canEdit"])


@bp.post("/modeler/open")
@roles(*EDITORS)
def open_files() -> Any:
    """Files from disk (e.g. drawn in the desktop Camunda Modeler) in the editors: nothing is stored until
    they are saved as a draft, which the engine lints like any other."""
    files: dict[str, str] = {}
    for upload in request.files.getlist("files")[:MAX_FILES]:
        name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not kind_of(name):
            continue
        try:
            files[name] = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            flash(f"{name} is not UTF-8 text; save it as UTF-8 and open it again.", "error")
            return redirect(url_for("modeler.processes"))
    if not any(kind_of(name) == "bpmn" for name in files):
        flash("Choose at least one .bpmn file (with its .dmn and .form files, if any).", "error")
        return redirect(url_for("modeler.processes"))
    grouped = {kind: {n: t for n, t in sorted(files.items()) if kind_of(n) == kind}
               for kind in ("bpmn", "dmn", "form")}
    config = {"files": grouped, "templates": engine().registry.element_templates(),
              "meanings": list(SIGNATURE_MEANINGS), "deployment": None, "canEdit": True,
              "saveUrl": url_for("modeler.save"), "lintUrl": url_for("modeler.check")}
    return render_template("modeler/edit.html", dep=None, names=sorted(files), config=config, impacts=IMPACTS,
                           can_submit=False)


def _posted_files() -> dict[str, str]:
    body = request.get_json(silent=True)
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, dict) or not files or len(files) > MAX_FILES or not all(
            isinstance(k, str) and isinstance(v, str) and kind_of(k) and "/" not in k and "\\" not in k
            for k, v in files.items()):
        raise DefinitionError("Send the bundle as {files: {name: text}} with .bpmn, .dmn and .form files.",
                              code="bundle_malformed")
    return files


def _problems(exc: DefinitionError) -> list[dict[str, Any]]:
    found = exc.context.get("problems")
    if found:
        return list(found)
    return [{"message": exc.message, "file": exc.file, "element_id": exc.element_id, "line": exc.line,
             "code": exc.code}]


@bp.post("/modeler/save")
@roles(*EDITORS)
def save() -> Any:
    """Deploy the posted bundle as a new draft version; 400 with the lint problems when there are any."""
    from engine.definitions.bundle import Bundle
    try:
        files = _posted_files()
        dep, created = engine().save_draft(request_context(), files)
    except DefinitionError as exc:
        return jsonify({"ok": False, "problems": _problems(exc)}), 400
    except GmpflowError as exc:
        return jsonify({"ok": False, "problems": [{"message": exc.message, "code": exc.code}]}), 409
    notices = [n.to_dict() for n in engine().lint_notices(Bundle(dict(files)))]  # named on import
    return jsonify({"ok": True, "created": created, "id": dep.id, "key": dep.key, "version": dep.version,
                    "status": dep.status, "url": url_for("modeler.edit", deployment_id=dep.id),
                    "notices": notices})


@bp.post("/modeler/lint")
@roles(*EDITORS)
def check() -> Any:
    """The engine's lint of the posted bundle, nothing stored."""
    from engine.definitions.bundle import Bundle
    try:
        bundle = Bundle(_posted_files())
        problems = engine().lint_bundle(bundle)
        notices = [n.to_dict() for n in engine().lint_notices(bundle)]
    except DefinitionError as exc:
        return jsonify({"ok": False, "problems": _problems(exc)}), 400
    found = [{"message": p.message, "file": p.file, "element_id": p.element_id, "line": p.line,
              "code": p.code}
             for p in problems]
    # notices: what the files carry that gmpflow reads past (another engine's extensions), never a refusal
    return jsonify({"ok": not found, "problems": found, "notices": notices}), 200


@bp.post("/modeler/<id:deployment_id>/submit")
@roles(*EDITORS)
def submit(deployment_id: int) -> Any:
    """Open a change control for the draft: the change request's form fields come from this form."""
    back = url_for("modeler.edit", deployment_id=deployment_id)
    fields = request_fields(request.form)
    if fields is None:
        return redirect(back)
    return open_and_answer(lambda: engine().request_change(request_context(), {
        "subject_kind": "deployment", "deployment_id": deployment_id, **fields},
        business_key=f"deployment {deployment_id}"), back, "opened for this draft; QA reviews it next.")


@bp.get("/processes/<id:deployment_id>/overview")
@roles(*OVERVIEW)
def overview(deployment_id: int) -> Any:
    view = engine().deployment_overview(deployment_id)
    totals = {name: sum(c.get(name, 0) for c in view["counts"].values())
              for name in ("tasks", "jobs", "incidents")}
    return render_template("modeler/overview.html", dep=view["deployment"], counts=view["counts"],
                           totals=totals, config={"xml": view["diagram"], "counts": view["counts"]})
