"""Personnel qualification (master data ``personnel_qualification``): who may claim and complete a task that
needs one.

A user task names what it needs with the property ``qualification.required``: a sandboxed expression over
the task's data (a SOP step: ``step['required_qualification']``, from the recipe step), whose value is a
qualification or nothing. Claiming or completing such a task is refused (``not_permitted``, audited by
``authority.refusals``) unless the user holds a ``personnel_qualification`` record in force now for that
qualification, valid until today or later — before any entry is taken, so a refused operator leaves no
attempt behind (and never becomes the "performer" that a witness must differ from).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.authority import NotPermitted
from engine.masterdata import effective
from engine.store.models import MasterDataRecord

PROPERTY = "qualification.required"
TYPE = "personnel_qualification"


def held(session: Session, person: str, skill: str, now: datetime) -> dict[str, Any] | None:
    """``{key, version, valid_until}`` of the person's record for ``skill`` in force at ``now``, or None."""
    for key in session.scalars(select(MasterDataRecord.key).where(MasterDataRecord.type_name == TYPE)
                               .order_by(MasterDataRecord.key)):
        version = effective.effective_at(session, TYPE, key, now)
        if version is not None and version.data.get("person") == person \
                and version.data.get("qualification") == skill:
            return {"key": key, "version": version.number, "valid_until": version.data.get("valid_until")}
    return None


def refusal(person: str, skill: str, found: dict[str, Any] | None, now: datetime) -> str | None:
    """Why ``person`` may not do work needing ``skill`` (in words), or None."""
    if found is None:
        return f"{person} holds no qualification '{skill}' in force."
    if date.fromisoformat(str(found["valid_until"])) < now.astimezone(timezone.utc).date():
        return f"{person}'s qualification '{skill}' expired on {found['valid_until']}."
    return None


def check(session: Session, username: str, skill: Any, now: datetime, *, action: str, task_id: int,
          task_name: str) -> None:
    """NotPermitted (``not_permitted``, naming the qualification) unless ``username`` holds ``skill``; nothing
    to check when ``skill`` is empty."""
    if not skill:
        return
    why = refusal(username, str(skill), held(session, username, str(skill), now), now)
    if why is not None:
        raise NotPermitted(f"The task '{task_name}' needs the qualification '{skill}': {why}",
                           action=f"task.{action}_refused", object_type="task", object_id=str(task_id),
                           after={"qualification": str(skill), "username": username, "why": "qualification"})
