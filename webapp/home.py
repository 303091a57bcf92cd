"""The start page after signing in: the deployed definitions and instance counts by status."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from engine.states import InstanceStatus
from webapp.guard import public, signed_in

bp = Blueprint("home", __name__)


@bp.get("/")
@signed_in
def index() -> str:
    engine = current_app.extensions["gmpflow"]
    counts = {str(s): engine.list_instances(status=str(s), limit=0)[1] for s in InstanceStatus}
    return render_template("home.html", definitions=engine.definitions(), counts=counts)


@bp.get("/favicon.ico")
@public
def favicon() -> Response:
    """No icon (the pages declare an empty one); a record copy opened in a tab of its own (a PDF) has no page
    to declare it, and the browser's request for one would be a 404 in its console."""
    return Response(status=204)
