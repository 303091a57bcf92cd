"""Batch review for QA: the exception list first, then the full electronic batch record, the batch's audit
trail, its deviations, and the release decision (taken and signed on the release task's page)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from gmp.batch_record import file_name
from gmp.services import GmpServices
from webapp.copies import checked_format, copy_response
from webapp.guard import engine, principal, roles, signed_in

bp = Blueprint("batches", __name__)
REVIEWERS = ("qa", "admin", "supervisor")


@bp.get("/batches")
@roles(*REVIEWERS)
def batches() -> Any:
    rows, total = engine().list_instances(key="sop_execution", limit=200)
    dispositions = engine().pack(GmpServices).batch_overview([r.business_key for r in rows if r.business_key])
    return render_template("batches/list.html", rows=rows, total=total, dispositions=dispositions)


@bp.get("/batches/<batch_id>")
@roles(*REVIEWERS)
def review(batch_id: str) -> Any:
    view = engine().pack(GmpServices).batch_review(principal(), batch_id)
    return render_template("batches/review.html", r=view["record"], open_tasks=view["open_tasks"])


@bp.get("/batches/<batch_id>/record.<fmt>")
@signed_in  # the engine applies the API's read rule (engine.access): readers of every record, participants
def record(batch_id: str, fmt: str) -> Any:
    copy = engine().pack(GmpServices).batch_record(batch_id, checked_format(fmt), reader=principal())
    return copy_response(copy, fmt, file_name(batch_id, fmt))
