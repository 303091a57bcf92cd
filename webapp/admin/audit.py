"""The audit trail: search, verify the hash chain and signatures, export as CSV or JSON."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, json, render_template, request

from engine.access import AUDIT_READERS
from webapp import jsonio
from webapp.admin import PAGE_SIZE, bp, day, page_number
from webapp.guard import engine, roles

AUDITORS = tuple(sorted(AUDIT_READERS))  # engine.access: the API's rule for the same data
EXPORT_LIMIT = 100_000
COLUMNS = ("seq", "at", "actor_id", "actor_name", "action", "object_type", "object_id", "object_label",
           "reason", "before", "after", "correlation_id", "prev_hash", "hash")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one that could start a formula gets a leading ``'`` (OWASP
    CSV injection). A reason, a label or a username is typed by users and lands in the export as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _filters() -> dict[str, Any]:
    text = {name: (request.args.get(name) or "").strip()[:200] or None
            for name in ("object_type", "object_id", "actor", "action", "correlation_id")}
    return {**text, "after": day("after"), "before": day("before", end=True)}


@bp.get("/admin/audit")
@roles(*AUDITORS)
def audit() -> Any:
    page = page_number()
    rows = engine().audit_events(**_filters(), limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    report = engine().verify_audit() if request.args.get("verify") == "1" else None
    return render_template("admin/audit.html", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
                           args=request.args, report=report)


@bp.get("/admin/audit/export.<fmt>")
@roles(*AUDITORS)
def export(fmt: str) -> Any:
    events = [jsonio.audit_event(e) for e in engine().audit_events(**_filters(), limit=EXPORT_LIMIT)]
    if fmt == "json":
        return Response(json.dumps(events, indent=1), mimetype="application/json",
                        headers={"Content-Disposition": "attachment; filename=audit-trail.json"})
    if fmt != "csv":
        return Response("Export as .csv or .json", status=404, mimetype="text/plain")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for event in events:
        writer.writerow([cell(json.dumps(event[c]) if isinstance(event[c], (dict, list)) else event[c])
                         for c in COLUMNS])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit-trail.csv"})
