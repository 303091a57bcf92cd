"""Jinja filters for people: date-times with their zone, naive database times made UTC-aware.

Pages show every instant as ``<time datetime="…Z">2026-11-25 14:03:07 UTC</time>``; ``static/js/localtime.js``
rewrites the text into the reader's time zone and keeps the UTC instant in the hover title. Records (JSON,
HTML, PDF copies) and the audit trail stay UTC."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask
from markupsafe import Markup, escape


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def utc_text(value: datetime | str | None) -> str:
    """``2026-11-25 14:03:07 UTC``; an ISO text is parsed first (kept as it is when it is no date-time);
    None is a dash."""
    instant = _instant(value)
    if instant is None:
        return "—" if value in (None, "") else str(value)
    return instant.strftime("%Y-%m-%d %H:%M:%S UTC")


def when(value: datetime | str | None) -> Markup:
    """The instant as a ``<time>`` element: machine-readable UTC in ``datetime``, the UTC text inside (the
    page script shows it in the reader's zone)."""
    instant = _instant(value)
    if instant is None:
        return Markup(escape(utc_text(value)))
    iso = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup(f'<time datetime="{iso}" data-utc>{escape(utc_text(instant))}</time>')


def _instant(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return aware(value).astimezone(timezone.utc)


def init_app(app: Flask) -> None:
    app.add_template_filter(aware)
    app.add_template_filter(when)
    app.add_template_filter(utc_text)
