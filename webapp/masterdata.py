"""Master data: browse types, records and versions (the effective one highlighted), diff two versions,
edit a draft in a form generated from the type's JSON Schema, propose the change (opens a change control)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from engine.errors import GmpflowError, ValidationFailed
from webapp import schemaform
from webapp.change_requests import IMPACTS, open_and_answer, request_fields
from webapp.guard import engine, roles
from webapp.request_context import request_context

bp = Blueprint("masterdata", __name__)
READERS = ("data_steward", "qa", "admin", "process_owner", "planner", "supervisor")
STEWARDS = ("data_steward",)


def readable_path(pointer: str) -> str:
    """``/steps/0/parameters/1/target`` → ``steps › 1 › parameters › 2 › target`` (rows counted from 1)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return (" › ".join(str(int(p) + 1) if p.isdigit() else p.replace("_", " ") for p in parts)
            or "(whole record)")


@bp.app_template_filter("pointer")
def _pointer_filter(pointer: str) -> str:
    return readable_path(pointer)


@bp.get("/masterdata")
@roles(*READERS)
def types() -> Any:
    return render_template("masterdata/types.html", types=engine().masterdata.types())


@bp.get("/masterdata/<name>")
@roles(*READERS)
def records(name: str) -> Any:
    rows = engine().masterdata.records(name)
    return render_template("masterdata/records.html", type_name=name, rows=rows)


@bp.get("/masterdata/<name>/<key>")
@roles(*READERS)
def record(name: str, key: str) -> Any:
    view = engine().masterdata.record_view(name, key)
    versions = view["versions"]
    wanted = request.args.get("version", "")
    shown = next((v for v in versions if str(v.number) == wanted), None) or view["effective"] or (
        versions[-1] if versions else None)
    return render_template("masterdata/record.html", v=view, shown=shown, impacts=IMPACTS,
                           today=engine().clock.now().date().isoformat())


@bp.get("/masterdata/<name>/<key>/diff")
@roles(*READERS)
def diff(name: str, key: str) -> Any:
    a, b = request.args.get("a", ""), request.args.get("b", "")
    if not (a.isdigit() and b.isdigit()):
        flash("Choose two versions to compare.", "error")
        return redirect(url_for("masterdata.record", name=name, key=key))
    changes = engine().masterdata.diff(name, key, int(a), int(b))
    return render_template("masterdata/diff.html", type_name=name, key=key, a=int(a), b=int(b),
                           changes=changes)


@bp.route("/masterdata/<name>/<key>/draft", methods=["GET", "POST"])
@roles(*STEWARDS)
def draft(name: str, key: str) -> Any:
    """The draft editor: GET shows the open draft (or the latest version's data to start one from);
    POST saves it, or shows the schema's errors next to the fields and saves nothing."""
    view = engine().masterdata.record_view(name, key)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = schemaform.parse(view["schema"], request.form)
        try:
            saved = engine().masterdata.save_draft(request_context(), name, key, data)
        except ValidationFailed as exc:
            errors, status = dict(exc.errors) or {"": exc.message}, 400
        except GmpflowError as exc:
            flash(exc.message, "error")
            return redirect(url_for("masterdata.record", name=name, key=key))
        else:
            flash(f"Draft v{saved.number} saved. Propose the change when it is ready.", "success")
            return redirect(url_for("masterdata.record", name=name, key=key, version=saved.number))
    else:
        if view["open"] is not None and view["open"].status != "draft":
            flash(f"Version {view['open'].number} is in review; a new draft can start once it is decided.",
                  "error")
            return redirect(url_for("masterdata.record", name=name, key=key))
        base = view["open"] or view["effective"] or (view["versions"][-1] if view["versions"] else None)
        data = base.data if base is not None else {}
    tree = schemaform.build(view["schema"], data, errors)
    placed = _pointers(tree)
    unplaced = {p: m for p, m in errors.items() if p not in placed}
    return render_template("masterdata/draft.html", v=view, tree=tree, errors=errors,
                           unplaced=unplaced), status


def _pointers(node: dict[str, Any]) -> set[str]:
    found = {node["pointer"]} if node.get("error") else set()
    for child in node.get("children", []):
        found |= _pointers(child)
    for i, row in enumerate(node.get("rows", [])):
        if node["row_errors"][i]:
            found.add(f"{node['pointer']}/{i}")
        for cell in row:
            found |= _pointers(cell)
    return found


@bp.post("/masterdata/<name>/<key>/versions/<int:number>/propose")
@roles(*STEWARDS)
def propose(name: str, key: str, number: int) -> Any:
    back = url_for("masterdata.record", name=name, key=key, version=number)
    fields = request_fields(request.form)
    if fields is None:
        return redirect(back)
    return open_and_answer(lambda: engine().propose_masterdata_change(request_context(), name, key, number,
                                                                      fields),
                           back, f"opened for v{number}; it is in review now.")

