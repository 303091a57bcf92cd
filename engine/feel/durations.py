"""FEEL's two duration types and their ISO 8601 text: a days and time duration (``P1DT2H``) is a
``datetime.timedelta``; a years and months duration (``P1Y2M``) is ``YearsMonths``, a whole number of
months (a month has no fixed length in days, so the two never compare or add). Task data carry both as their
ISO text; a decision input typed with either type is read back from that text."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

MAX_DIGITS = 9  # of one figure: a larger one could only overflow a timedelta (999,999,999 days)
_FIGURE = rf"(\d{{1,{MAX_DIGITS}}})"
_ISO = re.compile(
    rf"(-)?P(?:{_FIGURE}Y)?(?:{_FIGURE}M)?(?:{_FIGURE}D)?"
    rf"(?:T(?:{_FIGURE}H)?(?:{_FIGURE}M)?(?:(\d{{1,{MAX_DIGITS}}}(?:\.\d{{1,9}})?)S)?)?"
)


@dataclass(frozen=True, order=True)
class YearsMonths:
    """A years and months duration, as its number of months (negative for a negative duration)."""

    months: int

    def iso(self) -> str:
        sign, months = ("-" if self.months < 0 else ""), abs(self.months)
        years, rest = divmod(months, 12)
        text = (f"{years}Y" if years else "") + (f"{rest}M" if rest or not years else "")
        return f"{sign}P{text}"


Duration = timedelta | YearsMonths


def parse_duration(text: Any) -> Duration | None:
    """The duration an ISO 8601 text names (``P1D``, ``PT10H``, ``P1Y2M``, ``-P3M``), else None: a text
    mixing years or months with days or time names neither FEEL type."""
    if not isinstance(text, str):
        return None
    match = _ISO.fullmatch(text.strip())
    if match is None:
        return None
    negative, years, months, days, hours, minutes, seconds = match.groups()
    if not (years or months or days or hours or minutes or seconds) or "T" in text and not (
            hours or minutes or seconds):
        return None  # 'P' or 'P1DT' names no duration
    sign = -1 if negative else 1
    if (years or months) and (days or hours or minutes or seconds):
        return None
    if years or months:
        return YearsMonths(sign * (int(years or 0) * 12 + int(months or 0)))
    try:
        value = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                          seconds=float(Decimal(seconds or 0)))
    except OverflowError:
        return None
    return -value if negative else value


def iso(value: Duration) -> str:
    """The ISO 8601 text of a duration (``P1DT2H30M``, ``PT0S``, ``P1Y2M``)."""
    if isinstance(value, YearsMonths):
        return value.iso()
    sign, value = ("-" if value < timedelta(0) else ""), abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    fraction = f"{seconds}.{value.microseconds:06d}".rstrip("0") if value.microseconds else str(seconds)
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + \
        (f"{fraction}S" if seconds or value.microseconds else "")
    if not value.days and not time:
        return "PT0S"
    return f"{sign}P" + (f"{value.days}D" if value.days else "") + (f"T{time}" if time else "")


def add_months(day: Any, months: int) -> Any:
    """A date or date and time moved by whole months, the day of month kept or clamped to the month's last
    (January 31 + 1 month = February 28 or 29). None past the calendar's range."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        return None
    return day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def months_between(start: date, end: date) -> YearsMonths:
    """``years and months duration(from, to)``: the whole months from one date to the other."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and end.day < start.day:
        months -= 1
    elif months < 0 and end.day > start.day:
        months += 1
    return YearsMonths(months)
