"""Pages that refresh themselves: the inbox and the instance page poll ``/changes`` (one indexed read,
``engine.changes``) and fetch their live parts again when the marker moved (``static/js/page.js``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from engine import changes
from webapp.guard import engine, signed_in

bp = Blueprint("live", __name__)


@bp.get("/changes")
@signed_in
def marker() -> Any:
    response = jsonify({"marker": changes.marker(engine().db)})
    response.headers["Cache-Control"] = "no-store"
    return response
