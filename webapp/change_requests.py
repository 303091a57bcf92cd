"""Opening a change control from a page (a master-data draft, a process draft): the shared form and answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import flash, redirect, url_for
from werkzeug.datastructures import MultiDict

from engine.errors import GmpflowError

IMPACTS = (("none", "None"), ("indirect", "Indirect"), ("direct", "Direct (quality, safety, efficacy)"))


def request_fields(form: MultiDict[str, str]) -> dict[str, str] | None:
    """The change request's reason, product impact and effective date; None (and a message) when
    incomplete."""
    reason = (form.get("reason") or "").strip()
    impact = form.get("product_impact") or ""
    try:
        effective = date.fromisoformat(form.get("effective_date") or "").isoformat()
    except ValueError:
        effective = ""
    if len(reason) < 5 or impact not in dict(IMPACTS) or not effective:
        flash("Give a reason (at least 5 characters), the impact on the product and the date it takes "
              "effect.", "error")
        return None
    return {"reason": reason, "product_impact": impact, "effective_date": effective}


def open_and_answer(open_request: Callable[[], dict[str, Any]], back: str, opened_message: str) -> Any:
    """Open the change request and answer: back to the page, or to its request form when that needs
    attention."""
    try:
        opened = open_request()
    except GmpflowError as exc:
        flash(exc.message, "error")
        return redirect(back)
    if opened["error"] is not None:
        flash(f"Change request #{opened['instance'].id} is open, but its request form needs attention: "
              f"{opened['error'].message}", "error")
        return redirect(url_for("inbox.task", task_id=opened["task"].id))
    flash(f"Change request #{opened['instance'].id} {opened_message}", "success")
    return redirect(back)
