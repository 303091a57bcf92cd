"""Jinja filters for people: date-times with their zone, naive database times made UTC-aware."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def when(value: datetime | str | None) -> str:
    """``2026-11-25 14:03:07 UTC``; an ISO text is parsed first; None is a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return text
    return aware(value).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def init_app(app: Flask) -> None:
    app.add_template_filter(aware)
    app.add_template_filter(when)
