"""Batch review for QA: the exception list first, then the full electronic batch record, the batch's audit
trail, its deviations, and the release decision (taken and signed on the release task's page)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template

from engine.batch_record import file_name
from webapp.guard import engine, principal, roles

bp = Blueprint("batches", __name__)
REVIEWERS = ("qa", "admin", "supervisor")


@bp.get("/batches")
@roles(*REVIEWERS)
def batches() -> Any:
    rows, total = engine().list_instances(key="sop_execution", limit=200)
    dispositions = engine().batch_overview([r.business_key for r in rows if r.business_key])
    return render_template("batches/list.html", rows=rows, total=total, dispositions=dispositions)


@bp.get("/batches/<batch_id>")
@roles(*REVIEWERS)
def review(batch_id: str) -> Any:
    view = engine().batch_review(principal(), batch_id)
    return render_template("batches/review.html", r=view["record"], open_tasks=view["open_tasks"])


@bp.get("/batches/<batch_id>/record.<fmt>")
@roles(*REVIEWERS)
def record_copy(batch_id: str, fmt: str) -> Any:
    """The record's copies for the signed-in reviewer (the API serves the same to bearer tokens)."""
    if fmt not in ("json", "html", "pdf"):
        abort(404)
    copy = engine().batch_record(batch_id, fmt, reader=principal())
    if fmt == "json":
        return jsonify(copy)
    if fmt == "html":
        return Response(copy, mimetype="text/html")
    return Response(copy, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{file_name(batch_id, "pdf")}"'})
