"""Timer values written as bare ISO 8601 text: a timer's value is a Python expression, so ``P7D`` would be
read as a variable named P7D (and ``R6/PT1H`` as a division) and fail only when the timer starts."""

from __future__ import annotations

import re

ISO_DURATION = r"-?P(?:\d+(?:[.,]\d+)?[YMWD])*(?:T(?:\d+(?:[.,]\d+)?[HMS])+)?"
ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(?:T[\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?)?"
BARE_TIMER = re.compile(rf"^(?:R\d*/(?:{ISO_DATETIME}/)?(?:{ISO_DURATION}|{ISO_DATETIME})|{ISO_DURATION}|"
                        rf"{ISO_DATETIME}(?:/{ISO_DURATION})?)$")


def unquoted_timer(text: str | None) -> str | None:
    """Why a timer value is an unquoted ISO 8601 literal, with the quoted form to write; None when it is not
    one."""
    value = (text or "").strip()
    if not value or value in ("P", "-P") or not BARE_TIMER.match(value):
        return None
    return (f"The timer value {value} is ISO 8601 text without quotes; gmpflow reads a timer's value as a "
            f"Python expression: write '{value}' (in quotes).")
