"""Importing records from a file: a list of ``{type, key, title, data}``, all or nothing.

A new key becomes a record with a first draft; a known key gets a new draft. References may point to
records of the same file, whatever their order. Any problem anywhere fails the whole import with
every problem found, keyed by JSON pointer into the file (``/3/data/lines/0/material``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import Actor
from engine.clock import Clock
from engine.errors import GmpflowError, ValidationFailed
from engine.masterdata import records, types, validation
from engine.store.models import MasterDataRecord, MasterDataVersion

FIELDS = {"type": str, "key": str, "title": str, "data": dict}


def shape_errors(index: int, item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        return {f"/{index}": "must be an object with type, key, title and data"}
    errors = {f"/{index}/{name}": f"must be {'an object' if kind is dict else 'text'}"
              for name, kind in FIELDS.items() if not isinstance(item.get(name), kind)
              and not (name == "title" and name not in item)}
    for name in ("type", "key", "title"):
        value = item.get(name)
        if isinstance(value, str) and not 0 < len(value) <= (300 if name == "title" else 200):
            errors[f"/{index}/{name}"] = "must be between 1 and 200 characters (title: 300)"
    return errors


def import_records(session: Session, clock: Clock, actor: Actor, items: Any, *, reason: str | None = None
                   ) -> list[MasterDataVersion]:
    """The drafts created, in file order; ValidationFailed ``import_failed`` (nothing stored) otherwise.
    ``reason``: why, given to every event of the import."""
    if not isinstance(items, list) or not items:
        raise ValidationFailed("An import is a non-empty list of {type, key, title, data}.",
                               errors={"": "must be a non-empty array"}, code="import_failed")
    errors: dict[str, str] = {}
    seen: dict[tuple[str, str], int] = {}
    staged: list[tuple[int, MasterDataVersion]] = []
    for index, item in enumerate(items):
        problems = shape_errors(index, item)
        if not problems:
            identity = (item["type"], item["key"])
            if identity in seen:
                problems[f"/{index}/key"] = f"repeats the record of item {seen[identity]}"
            seen.setdefault(identity, index)
        if problems:
            errors.update(problems)
            continue
        try:
            staged.append((index, _stage(session, clock, actor, item, reason)))
        except GmpflowError as exc:
            errors.update(_located(index, exc))
    for index, version in staged:
        _, references = validation.check(types.schema_of(types.current(session, version.record.type_name)),
                                         version.data, version.record.key)
        for where, message in validation.unknown_references(session, references).items():
            errors[f"/{index}/data{where}"] = message
    if errors:
        raise ValidationFailed(f"Nothing was imported: {len({k.split('/')[1] for k in errors if k})} of "
                               f"{len(items)} records have problems.", errors=errors, code="import_failed")
    return [version for _, version in staged]


def _stage(session: Session, clock: Clock, actor: Actor, item: dict[str, Any], reason: str | None
           ) -> MasterDataVersion:
    exists = session.scalar(select(MasterDataRecord.id).where(MasterDataRecord.type_name == item["type"],
                                                              MasterDataRecord.key == item["key"]))
    if exists is None:
        return records.create_record(session, clock, actor, item["type"], item["key"],
                                     item.get("title") or item["key"], item["data"], check_refs=False,
                                     reason=reason)
    return records.new_draft(session, clock, actor, item["type"], item["key"], item["data"], check_refs=False,
                             reason=reason)


def _located(index: int, exc: GmpflowError) -> dict[str, str]:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return {f"/{index}/data{where}": message for where, message in exc.errors.items()}
    field = "type" if exc.code == "masterdata_type_not_found" else "key"
    return {f"/{index}/{field}": f"{exc.message} ({exc.code})"}
