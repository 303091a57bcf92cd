"""Pages that refresh themselves: the inbox and the instance page poll ``/changes`` (one indexed read,
``engine.changes``: an opaque marker per reader, never the audit sequence itself) and fetch their live parts
again when the marker moved (``static/js/page.js``).

A live page carries the marker of what it shows (``@live_page``: read before the view reads its data, so a
change in between refreshes the page once more rather than never). Taking the first poll's marker instead
missed a change committed between the page's render and that poll."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, jsonify

from engine import changes
from webapp.guard import engine, principal, signed_in

bp = Blueprint("live", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def _marker() -> str:
    return changes.marker(engine().db, current_app.config["SECRET_KEY"], principal().username)


def live_page(view: F) -> F:
    """Mark ``view`` a page with live parts: ``base.html`` gives it ``data-marker``, what ``page.js`` starts
    from. Below the access decorator: the reader is signed in when it runs."""
    @wraps(view)
    def with_marker(*args: Any, **kwargs: Any) -> Any:
        g.live_marker = _marker()
        return view(*args, **kwargs)
    return with_marker  # type: ignore[return-value]


@bp.get("/changes")
@signed_in
def marker() -> Any:
    response = jsonify({"marker": _marker()})
    response.headers["Cache-Control"] = "no-store"
    return response
