"""The FEEL built-in functions gmpflow offers: each checks its arguments' types (null when they do not fit,
as FEEL says) and can build nothing larger than its inputs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Callable

from engine.feel.durations import YearsMonths, iso, months_between, parse_duration


class FeelError(ValueError):
    """A FEEL expression could not be evaluated (not a FEEL null: a fault the modeler must fix)."""


def _date(*args: Any) -> date | None:
    if len(args) == 1 and isinstance(args[0], str):
        try:
            return date.fromisoformat(args[0])
        except ValueError:
            return None
    if len(args) == 1 and isinstance(args[0], datetime):
        return args[0].date()
    if len(args) == 3 and all(isinstance(a, Decimal) for a in args):
        try:
            return date(int(args[0]), int(args[1]), int(args[2]))
        except (ValueError, OverflowError):
            return None
    return None


def _date_and_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _number(text: Any) -> Decimal | None:
    if not isinstance(text, str) or len(text) > 100:
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


def _string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, (date, str)):
        return value.isoformat() if isinstance(value, date) else value
    if isinstance(value, (timedelta, YearsMonths)):
        return iso(value)
    return None


def _years_and_months(start: Any, end: Any) -> YearsMonths | None:
    if not (isinstance(start, date) and isinstance(end, date)):
        return None
    return months_between(start, end)


def _numbers(values: Any) -> list[Decimal] | None:
    if isinstance(values, list) and all(isinstance(v, Decimal) for v in values):
        return values
    return None


def _aggregate(name: str) -> Callable[..., Any]:
    def aggregate(*args: Any) -> Any:
        items = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        numbers = _numbers(items)
        if name == "count":
            return Decimal(len(items))
        if numbers is None:
            return None
        if name == "sum":
            return sum(numbers, Decimal(0))
        if not numbers:
            return None
        return min(numbers) if name == "min" else max(numbers)

    return aggregate


def _text(function: Callable[..., Any], *types: type) -> Callable[..., Any]:
    def checked(*args: Any) -> Any:
        if len(args) != len(types) or not all(isinstance(a, t) for a, t in zip(args, types, strict=True)):
            return None
        return function(*args)

    return checked


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "date and time": _date_and_time,
    "number": _number,
    "duration": _text(parse_duration, str),
    "years and months duration": _text(_years_and_months, date, date),
    "string": _string,
    "not": lambda value: (not value) if isinstance(value, bool) else None,
    "abs": _text(abs, Decimal),
    "floor": _text(lambda n: n.to_integral_value(rounding=ROUND_FLOOR), Decimal),
    "ceiling": _text(lambda n: n.to_integral_value(rounding=ROUND_CEILING), Decimal),
    "string length": _text(lambda s: Decimal(len(s)), str),
    "upper case": _text(str.upper, str),
    "lower case": _text(str.lower, str),
    "contains": _text(lambda s, part: part in s, str, str),
    "starts with": _text(str.startswith, str, str),
    "ends with": _text(str.endswith, str, str),
    "count": _aggregate("count"),
    "sum": _aggregate("sum"),
    "min": _aggregate("min"),
    "max": _aggregate("max"),
}
FUNCTION_NAMES = frozenset(FUNCTIONS)
