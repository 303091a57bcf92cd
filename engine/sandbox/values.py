"""The expanded size of a value: what ``str``, ``==``, hashing and the JSON of the task data walk through.

A nested value can share its parts (``a = [a, a]`` forty times is a small object whose text would have 2**40
parts), and C code walks every path of it while holding the GIL. So the size counts every path, computed
once per distinct part (memoized by id) and stopped at the limit: the check itself stays cheap.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from engine.sandbox.limits import MAX_ITEMS, Refused

MAX_DEPTH = 100  # deepest nesting of lists, dicts, tuples and sets (deeper breaks copying and storing data)
CONTAINERS = (list, tuple, dict, set, frozenset)


def check_value(value: Any, what: str) -> Any:
    """Return ``value``; refuse one whose expanded size passes MAX_ITEMS, that nests deeper than MAX_DEPTH
    or that contains itself."""
    if isinstance(value, CONTAINERS) and _size(value, {}, 0) > MAX_ITEMS:
        raise Refused(f"{what}: the value would have more than {MAX_ITEMS:,} parts once written out")
    return value


# what the instance state can store (SpiffWorkflow's registry adds datetime, timedelta and UUID to JSON)
STORED_SCALARS = (str, int, float, bool, type(None), datetime, timedelta, UUID)
_HINTS = {date: "store its isoformat() or a datetime", Decimal: "store str() or float() of it",
          set: "store a list", frozenset: "store a list"}


def check_stored(value: Any, name: str) -> None:
    """Refuse a value that a script leaves in the task data but the instance's state cannot store (it
    would fail when the step commits): a date, a Decimal, a set, a range, a tuple as a dict key..."""
    check_value(value, f"the variable '{name}'")
    pending, seen = [value], set()
    while pending:
        item = pending.pop()
        if isinstance(item, (list, tuple)):
            if id(item) not in seen:
                seen.add(id(item))
                pending.extend(item)
        elif isinstance(item, dict):
            if id(item) not in seen:
                seen.add(id(item))
                pending.extend(item.values())
                bad = [k for k in item if not isinstance(k, (str, int, float, bool, type(None)))]
                if bad:
                    raise TypeError(f"the variable '{name}' has a key of type {type(bad[0]).__name__}, which "
                                  "task data cannot store; use text or numbers as keys")
        elif isinstance(item, float) and not math.isfinite(item):  # the record's JSON copy would break
            raise TypeError(f"the variable '{name}' holds {item}, which task data cannot store "
                            "(JSON has no infinite or undefined numbers)")
        elif not isinstance(item, STORED_SCALARS):
            kind = type(item)
            hint = next((h for t, h in _HINTS.items() if isinstance(item, t) and kind is not datetime), None)
            raise TypeError(f"the variable '{name}' holds a {kind.__name__}, which task data cannot store"
                          + (f"; {hint}" if hint else ""))


def _size(value: Any, memo: dict[int, int | None], depth: int) -> int:
    key = id(value)
    if key in memo:
        known = memo[key]
        if known is None:
            raise Refused("a value may not contain itself")
        return known
    if depth >= MAX_DEPTH:
        raise Refused(f"values may not be nested more than {MAX_DEPTH} levels deep")
    memo[key] = None
    total = _flat_size(value)
    if total is not None:
        memo[key] = total
        return total
    total = 1
    for item in _parts(value):
        if isinstance(item, CONTAINERS):
            total += _size(item, memo, depth + 1)
        elif isinstance(item, (str, bytes)):
            total += len(item) + 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 1
        if total > MAX_ITEMS:
            break
    memo[key] = total
    return total


def _flat_size(value: Any) -> int | None:
    """The size of a long list, tuple or set of one kind of scalar, counted in C; None for any other value
    (walked item by item)."""
    if len(value) < 64 or isinstance(value, dict):
        return None
    kinds = set(map(type, value))
    if kinds <= _SMALL:
        return len(value) + 1
    if kinds in ({str}, {bytes}):
        return sum(map(len, value)) + len(value) + 1
    if kinds == {int}:
        return sum(map(int.bit_length, value)) // 3 + len(value) + 1
    return None


_SMALL = {float, bool, type(None), Decimal, datetime, date, timedelta}


def _parts(value: Any) -> Any:
    if isinstance(value, dict):
        for pair in value.items():
            yield from pair
    else:
        yield from value
