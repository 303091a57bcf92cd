"""``locals()`` in model code: a fresh dict copying the script's data variables, nothing else.

Models drawn for SpiffWorkflow ask ``'x' in locals()`` to learn whether the task data holds ``x``. The policy
rewrites a call ``locals()`` (no arguments; the bare name stays refused) into a call of ``data_locals``, which
reads the calling frame's variables and keeps a variable only when

- its name does not start with ``_`` (the guards, ``__builtins__``: model code cannot name them either),
- it is not one the environment or the caller injected (``RUN.injected``), unless the script assigned it anew,
- its value is data all the way down: text, numbers, booleans, ``None``, dates and times, ``Decimal``,
  ``UUID``, and lists, tuples, dicts and sets of them (keys included). So no function, class, module,
  generator or iterator (a comprehension's ``.0``) is ever in it: nothing that leads to a frame, a code
  object, a class or the builtins.

The dict is a copy: changing it changes no variable. It reads what model code could already name; it only
lists the names.
"""

from __future__ import annotations

import sys
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from engine.sandbox.limits import MAX_ITEMS, RUN, Refused, refuse_size
from engine.sandbox.policy import FILENAME

_SCALARS = frozenset({str, bytes, int, float, bool, type(None), Decimal, datetime, date, time, timedelta,
                      uuid.UUID})
_SEQUENCES = frozenset({list, tuple, set, frozenset})


def data_locals() -> dict[str, Any]:
    """The calling model code's data variables, copied into a new dict."""
    frame = sys._getframe(1)
    if frame.f_code.co_filename != FILENAME:  # only the policy's rewrite of locals() calls it
        raise Refused("locals() is only available to the code of a model")
    injected: dict[str, Any] = RUN.injected
    budget = [MAX_ITEMS]  # parts the check may walk one by one, over all the variables
    seen: set[int] = set()
    found = {name: value for name, value in list(frame.f_locals.items())
             if not name.startswith("_") and not (name in injected and value is injected[name])
             and _is_data(value, seen, budget)}
    refuse_size(len(found), "locals()")
    return found


def _is_data(value: Any, seen: set[int], budget: list[int]) -> bool:
    """True when ``value`` and all its parts (dict keys too) are of the kinds task data holds. ``seen`` holds
    the containers found to be data, or being walked (shared parts and cycles are walked once)."""
    pending = [value]
    checked: list[int] = []
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind not in _SEQUENCES and kind is not dict:
            seen.difference_update(checked)  # what this walk marked may hold this item
            return False
        if id(item) in seen:
            continue
        seen.add(id(item))
        checked.append(id(item))
        if kind is dict:
            parts: Any = [*item.keys(), *item.values()]
        else:  # a flat sequence of scalars is checked in C
            parts = () if set(map(type, item)) <= _SCALARS else item
        budget[0] -= len(parts) + 1
        if budget[0] < 0:
            raise Refused(f"locals(): the variables have more than {MAX_ITEMS:,} parts to check")
        pending.extend(parts)
    return True
