"""The admin area: instances, incidents, the audit trail, users and roles."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, request

bp = Blueprint("admin", __name__)
PAGE_SIZE = 25


def page_number() -> int:
    value = request.args.get("page", "1")
    return max(1, min(int(value), 100000)) if value.isdigit() else 1


def day(name: str, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` query argument as UTC midnight (``end``: the midnight after that day)."""
    try:
        value = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    moment = datetime.combine(value, time(), tzinfo=timezone.utc)
    return moment + timedelta(days=1) if end else moment


from webapp.admin import audit, incidents, instances, users  # noqa: E402,F401  (routes register on bp)
