"""The landing page: what gmpflow is, the deployed definitions, instance counts by status."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from engine.states import InstanceStatus

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    engine = current_app.extensions["gmpflow"]
    counts = {str(s): engine.list_instances(status=str(s), limit=0)[1] for s in InstanceStatus}
    return render_template("home.html", definitions=engine.definitions(), counts=counts)
