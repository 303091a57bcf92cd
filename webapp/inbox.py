"""The operator's inbox and the task page: claim, unclaim, fill in the form, sign, complete."""

from __future__ import annotations

import copy
import json
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from markdown_it import MarkdownIt
from markupsafe import Markup

from engine.errors import (
    Conflict,
    EntryRefused,
    GmpflowError,
    NotFound,
    PermissionDenied,
    SignatureRejected,
    ValidationFailed,
)
from gmp.services import GmpServices
from webapp.guard import engine, forbidden, principal, safe_next, signed_in
from webapp.jsonio import not_json
from webapp.live import live_page
from webapp.request_context import request_context

bp = Blueprint("inbox", __name__)
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
STATES = ("open", "claimed")

SIGNATURE_MESSAGES = {
    "signature_required": "This step must be signed: choose the meaning where asked, and enter your "
                          "username and password in the signing dialog.",
    "signature_user_mismatch": "You can only sign with your own account: the username must be the one you "
                               "are signed in with.",
    "signature_password_invalid": "The password is wrong. The step is not signed and nothing was saved; "
                                  "repeated wrong passwords lock the account.",
    "signature_account_locked": "Your account is locked after too many failed attempts, so you cannot sign. "
                                "Ask an administrator to unlock it.",
    "signature_password_change_required": "Your password is a one-time or expired password. Change it "
                                          "(Account) before you sign.",
    "signature_meaning_not_allowed": "This meaning of signature is not allowed for this step.",
    "signature_four_eyes": "Four-eyes rule: you took part earlier in this record (you started it, performed "
                           "or signed a step that this signature must be independent of). Another person "
                           "must sign.",
}


def instructions_html(text: str | None) -> Markup:
    """The model's markdown instructions as HTML; raw HTML in them is shown as text, never run."""
    return Markup(_markdown.render(text or ""))


def with_limits(form: dict[str, Any] | None) -> dict[str, Any] | None:
    """The form with each number field's limits (``validate.min``/``max``) written beside it."""
    if form is None:
        return None
    shown = copy.deepcopy(form)
    for component in _components(shown):
        rule = component.get("validate") or {}
        low, high = rule.get("min"), rule.get("max")
        if component.get("type") != "number" or (low is None and high is None):
            continue
        if low is not None and high is not None:
            limit = f"Limits: {low} – {high}"
        else:
            limit = f"Minimum: {low}" if low is not None else f"Maximum: {high}"
        component["description"] = f"{component['description']} · {limit}" if component.get("description") \
            else limit
    return shown


def _components(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for component in node.get("components") or []:
        found.append(component)
        found.extend(_components(component))
    return found


def field_labels(form: dict[str, Any] | None) -> dict[str, str]:
    return {c["key"]: c.get("label") or c["key"] for c in _components(form or {}) if c.get("key")}


@bp.get("/inbox")
@signed_in
@live_page
def inbox() -> Any:
    state = request.args.get("state") if request.args.get("state") in STATES else None
    filters = {"state": state, "process": request.args.get("process") or None,
               "business_key": (request.args.get("q") or "").strip()[:200] or None,
               "mine": request.args.get("mine") == "1"}
    rows = engine().inbox(principal(), **filters)
    processes = sorted({(r["process_key"], r["process_name"]) for r in rows})
    return render_template("inbox.html", rows=rows, filters=filters, processes=processes,
                           now=engine().clock.now())


def _render_task(task_id: int, *, status: int = 200, data: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, error: str | None = None,
                 sign_error: str | None = None) -> Any:
    try:
        view = engine().task_view(principal(), task_id)
    except NotFound:
        return render_template("error.html", title="No such task", status=404,
                               message=f"There is no task {task_id}."), 404
    except PermissionDenied as exc:
        return forbidden(exc.message)
    task = view["task"]
    ebr = (engine().pack(GmpServices).step_screen(principal(), task_id) if view.get("screen") == "ebr_step"
           else None)
    context = {
        "view": view, "task": task, "instance": view["instance"],
        "instructions": instructions_html(task.instructions),
        "form": with_limits(view["form"]), "labels": field_labels(view["form"]),
        # the form starts from the task's inputs; what the user submitted (after a refusal) wins
        "data": {**view["inputs"], **(data if data is not None else (task.data or {}))},
        "errors": errors or {}, "error": error,
        "sign_error": sign_error, "signatures": engine().list_signatures(task_guids=[task.task_guid])
        if task.state == "completed" else [],
        "ebr": ebr,  # the EBR step screen replaces the rendered form; the form still validates what is sent
    }
    return render_template("task.html", **context), status


@bp.get("/tasks/<id:task_id>")
@signed_in
def task(task_id: int) -> Any:
    return _render_task(task_id)


@bp.get("/tasks/<id:task_id>/entry-check")
@signed_in
def entry_check(task_id: int) -> Any:
    """The EBR step screen's check as the operator types (``?data=`` the entry as JSON): reads only."""
    try:
        data = json.loads(request.args.get("data") or "{}", parse_constant=not_json)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return jsonify(engine().pack(GmpServices).check_step_entry(principal(), task_id, data))
    except ValueError:
        return jsonify({"code": "bad_form_data", "detail": "data must be a JSON object"}), 400
    except (NotFound, PermissionDenied) as exc:
        return jsonify({"code": exc.code, "detail": exc.message}), 404 if isinstance(exc, NotFound) else 403


@bp.post("/tasks/<id:task_id>/claim")
@signed_in
def claim(task_id: int) -> Any:
    return _act(task_id, engine().claim_task, "You claimed the task.")


@bp.post("/tasks/<id:task_id>/unclaim")
@signed_in
def unclaim(task_id: int) -> Any:
    return _act(task_id, engine().unclaim_task, "The task is back in the lane.")


def _act(task_id: int, action: Any, done: str) -> Any:
    try:
        action(request_context(), task_id)
        flash(done, "success")
    except GmpflowError as exc:
        flash(exc.message, "error")
    return redirect(safe_next(request.form.get("next")))


def submitted_data() -> dict[str, Any]:
    try:
        data = json.loads(request.form.get("data") or "{}", parse_constant=not_json)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ValidationFailed("The form data did not arrive; reload the page and try again.",
                               code="bad_form_data")
    return data


@bp.post("/tasks/<id:task_id>/complete")
@signed_in
def complete(task_id: int) -> Any:
    data: dict[str, Any] = {}
    signature = None
    if request.form.get("sign") == "1":
        signature = {"username": request.form.get("sig_username", "").strip(),
                     "password": request.form.get("sig_password", ""),
                     "meaning": request.form.get("sig_meaning", "")}
        if request.form.get("sig_record_sha256"):  # the hash of the record this page showed
            signature["record_sha256"] = request.form["sig_record_sha256"]
    try:
        data = submitted_data()
        done = engine().complete_task(request_context(), task_id, data, signature)
    except EntryRefused as exc:  # refused before the signature: nothing stored, the attempt recorded
        return _render_task(task_id, status=422, data=data, errors=exc.errors,
                            error=f"Refused before signing ({exc.code}): {exc.message} Nothing was signed or "
                                  "saved; correct the entry and sign again.")
    except ValidationFailed as exc:
        return _render_task(task_id, status=400, data=data, errors=exc.errors,
                            error="Some values are not accepted; see the messages next to the fields.")
    except SignatureRejected as exc:
        return _render_task(task_id, status=403, data=data,
                            sign_error=SIGNATURE_MESSAGES.get(exc.code, exc.message))
    except Conflict as exc:
        if exc.code == "task_not_open":
            return render_template("error.html", title="Already completed", status=409,
                                   message="This task was already completed; your submission changed "
                                           "nothing.",
                                   link=url_for("inbox.inbox"), link_text="Back to the inbox"), 409
        return _render_task(task_id, status=409, data=data, error=exc.message)
    except PermissionDenied as exc:
        return forbidden(exc.message)
    flash(f"“{done.name}” completed" + (" and signed." if signature else "."), "success")
    return redirect(safe_next(request.form.get("next")))  # back where the task was opened from, or the inbox
