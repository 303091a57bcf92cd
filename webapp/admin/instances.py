"""Instances: the filtered list, one instance's page, its inspector copies, suspend/resume/terminate."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from engine.access import RECORD_READERS
from engine.errors import GmpflowError
from engine.states import InstanceStatus
from webapp.admin import PAGE_SIZE, bp, day, page_number
from webapp.copies import checked_format, copy_response
from webapp.guard import engine, principal, roles, signed_in
from webapp.live import live_page
from webapp.request_context import request_context

VIEWERS = tuple(sorted(RECORD_READERS))  # engine.access: the API's rule for the same data
ACTIONS = {"suspend": "suspended", "resume": "resumed", "terminate": "terminated"}


@bp.get("/admin/instances")
@roles(*VIEWERS)
def instances() -> Any:
    version = request.args.get("version", "")
    filters: dict[str, Any]  # the keyword arguments of list_instances
    filters = {"key": request.args.get("process") or None,
               "version": int(version) if version.isdigit() else None,
               "status": (request.args.get("status") if request.args.get("status") in set(InstanceStatus)
                          else None),
               "business_key": (request.args.get("business_key") or "").strip()[:200] or None,
               "started_after": day("started_from"), "started_before": day("started_to", end=True)}
    page = page_number()
    rows, total = engine().list_instances(**filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                          reader=principal())
    definitions = engine().definitions()
    return render_template("admin/instances.html", rows=rows, total=total, page=page, page_size=PAGE_SIZE,
                           definitions=definitions, statuses=list(InstanceStatus), args=request.args)


@bp.get("/instances/<id:instance_id>")
@roles(*VIEWERS)
@live_page
def instance(instance_id: int) -> Any:
    view = engine().instance_view(instance_id)
    return render_template("admin/instance.html", v=view, i=view["instance"], record=view["record"],
                           actions=ACTIONS)


@bp.get("/instances/<id:instance_id>/record.<fmt>")
@signed_in  # the engine applies the API's read rule (engine.access): readers of every record, participants
def record(instance_id: int, fmt: str) -> Any:
    copy = engine().instance_record(instance_id, checked_format(fmt), reader=principal())
    return copy_response(copy, fmt, f"instance-{instance_id}-record.{fmt}")


@bp.post("/admin/instances/<id:instance_id>/<action>")
@roles("admin")
def change_status(instance_id: int, action: str) -> Any:
    if action not in ACTIONS:
        abort(404)
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        flash(f"A reason is required to {action} an instance.", "error")
    else:
        try:
            engine().change_instance_status(request_context(reason), instance_id, action)
            flash(f"Instance {instance_id} {ACTIONS[action]}.", "success")
        except GmpflowError as exc:
            flash(exc.message, "error")
    return redirect(url_for("admin.instance", instance_id=instance_id))
