"""The difference between two versions' data, as a list of changes at JSON pointers."""

from __future__ import annotations

from typing import Any

from engine.masterdata.validation import pointer

MISSING: Any = None  # an added or removed value reads as null on the side where it is absent


def diff(before: Any, after: Any, path: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """``[{path, before, after}]``, deepest changes only, objects by key and arrays by position.

    A change of JSON type (object to array, number to text...) is one change at that path.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for name in sorted(before.keys() | after.keys()):
            if name not in after:
                changes.append({"path": pointer((*path, name)), "before": before[name], "after": MISSING})
            elif name not in before:
                changes.append({"path": pointer((*path, name)), "before": MISSING, "after": after[name]})
            else:
                changes += diff(before[name], after[name], (*path, name))
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            if index >= len(after):
                changes.append({"path": pointer((*path, index)), "before": before[index], "after": MISSING})
            elif index >= len(before):
                changes.append({"path": pointer((*path, index)), "before": MISSING, "after": after[index]})
            else:
                changes += diff(before[index], after[index], (*path, index))
        return changes
    if before == after and type(before) is type(after):
        return []
    return [{"path": pointer(path), "before": before, "after": after}]
