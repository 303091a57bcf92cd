"""The start page: the processes the signed-in user may start, each with its start form; and starting one.

Who may start what is the model's (``engine.authority``, asked through the services); this page only shows
the answer and hands what was typed to ``Gmpflow.start_instance`` with the request's context, which checks it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from engine.errors import NotFound, ValidationFailed
from engine.runtime.rows import InstanceRow
from webapp.guard import SIGNED_IN, access_of, engine, principal, signed_in
from webapp.inbox import field_labels, submitted_data, with_limits
from webapp.request_context import request_context

bp = Blueprint("start", __name__)
BUSINESS_KEY_MAX = 200  # the column's length (and the API's maxLength)
FORM_ERROR = "Some values are not accepted; see the messages next to the fields."


def _render(*, status: int = 200, failed: str | None = None, data: dict[str, Any] | None = None,
            errors: dict[str, str] | None = None, error: str | None = None,
            business_key: str = "") -> Any:
    """The page; after a refusal, the process ``failed`` keeps what was typed and shows why."""
    options = engine().start_options(principal())
    for option in options:
        mine = option["key"] == failed
        option.update(shown_form=with_limits(option["form"]), labels=field_labels(option["form"]),
                      data=data if mine and data else {}, errors=errors if mine and errors else {},
                      error=error if mine else None, business_key=business_key if mine else "")
    startable = [o for o in options if o["how"] == "form"]
    informed = [o for o in options if o["how"] in ("message", "engine")]
    return render_template("start.html", startable=startable, informed=informed, failed=failed), status


@bp.get("/start")
@signed_in
def start_page() -> Any:
    return _render()


@bp.post("/start/<key:key>")
@signed_in
def start(key: str) -> Any:
    business_key = (request.form.get("business_key") or "").strip()
    data: dict[str, Any] = {}
    try:
        data = submitted_data()
        if len(business_key) > BUSINESS_KEY_MAX:
            raise ValidationFailed(FORM_ERROR, errors={
                "business_key": f"At most {BUSINESS_KEY_MAX} characters."})
        started = engine().start_instance(request_context(), key, business_key or None, data)
    except NotFound:
        return render_template("error.html", title="No such process", status=404,
                               message=f"There is no active process '{key}'.",
                               link=url_for("start.start_page"), link_text="Back to the start page"), 404
    except ValidationFailed as exc:  # undeclared fields too (422), like a task's form
        status = 422 if exc.code == "undeclared_field" else 400
        return _render(status=status, failed=key, data=data, errors=exc.errors, business_key=business_key,
                       error=exc.message if status == 422 or not exc.errors else FORM_ERROR)
    # PermissionDenied (not_permitted) goes to the app's error handler: 403 with its code
    return redirect(_landing(started))


def _landing(started: InstanceRow) -> str:
    """The starter's first open task of the new instance, else the instance page if their roles open it,
    else the start page with a confirmation naming the instance."""
    me = principal()
    tasks = [r["task"] for r in engine().inbox(me, process=started.process_key, state="open")
             if r["task"].instance_id == started.id]
    if tasks:
        return url_for("inbox.task", task_id=min(t.id for t in tasks))
    access = access_of(current_app, "admin.instance")
    if access == SIGNED_IN or (isinstance(access, frozenset) and me.roles & access):
        flash(f"Instance #{started.id} started.", "success")
        return url_for("admin.instance", instance_id=started.id)
    named = f"#{started.id}" + (f" ({started.business_key})" if started.business_key else "")
    flash(f"Instance {named} of “{started.process_key}” started; it has no task for you now.", "success")
    return url_for("start.start_page")
