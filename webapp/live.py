"""Pages that refresh themselves: the inbox and the instance page poll ``/changes`` (one indexed read,
``engine.changes``: an opaque marker per reader, never the audit sequence itself) and fetch their live parts
again when the marker moved (``static/js/page.js``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from engine import changes
from webapp.guard import engine, principal, signed_in

bp = Blueprint("live", __name__)


@bp.get("/changes")
@signed_in
def marker() -> Any:
    key = current_app.config["SECRET_KEY"]
    response = jsonify({"marker": changes.marker(engine().db, key, principal().username)})
    response.headers["Cache-Control"] = "no-store"
    return response
