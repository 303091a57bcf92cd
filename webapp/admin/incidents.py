"""Incidents: service calls that exhausted their retries; an admin retries them with a reason."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from engine.errors import GmpflowError
from webapp.admin import bp
from webapp.guard import engine, roles
from webapp.request_context import request_context


@bp.get("/admin/incidents")
@roles("admin")
def incidents() -> Any:
    show_all = request.args.get("all") == "1"
    return render_template("admin/incidents.html", rows=engine().list_incidents(open_only=not show_all),
                           show_all=show_all)


@bp.post("/admin/incidents/<id:incident_id>/retry")
@roles("admin")
def retry(incident_id: int) -> Any:
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        flash("A reason is required to retry an incident.", "error")
        return redirect(url_for("admin.incidents"))
    try:
        engine().retry_incident(request_context(reason), incident_id)
        flash(f"Incident {incident_id} retried: the call runs again.", "success")
    except GmpflowError as exc:
        flash(exc.message, "error")
    return redirect(url_for("admin.incidents"))
