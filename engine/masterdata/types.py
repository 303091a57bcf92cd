"""Record types: JSON Schema files (draft 2020-12), one per type, loaded into the store.

A type is the file ``<name>.schema.json`` in the master-data folder (``Config.masterdata_folder()``:
``GMPFLOW_MASTERDATA_PATH``, default the content pack's ``masterdata/``). Loading stores the schema text
and the hash of its canonical JSON; a changed schema becomes the type's next version (audited), an unchanged
one is left alone. Records are always checked against the latest version of their type.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit, shipped
from engine.audit import Actor
from engine.clock import Clock
from engine.errors import DefinitionError, NotFound
from engine.identity import HOW_TO_ADD_A_ROLE, role_names
from engine.store.models import MasterDataType

SUFFIX = ".schema.json"
REF = "x-ref"   # on a string property: the value is the key of a record of the named type
KEY = "x-key"   # at the root: the property whose value must equal the record's key
OWNER = "x-owner-role"      # at the root: the role that approves a change of the type's records
STEWARD = "x-steward-role"  # at the root: the role that keeps the records (requests and assesses changes)


def read_folder(path: Path | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{type name: (schema text, schema)}`` of every ``*.schema.json`` directly in the folder.

    Raises DefinitionError (code ``masterdata_schema_invalid``) naming the file of a schema that is not
    JSON, not a valid draft 2020-12 schema, or that references a type the folder does not declare.
    """
    path = path or shipped.masterdata()
    if not path.is_dir():
        raise DefinitionError(f"The master-data folder {path} does not exist.",
                              code="masterdata_folder_missing")
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for file in sorted(path.glob(f"*{SUFFIX}")):
        text = file.read_text(encoding="utf-8")
        try:
            schema = json.loads(text)
            Draft202012Validator.check_schema(schema)
        except (ValueError, SchemaError) as exc:
            raise DefinitionError(f"Not a valid JSON Schema (draft 2020-12): {exc}", file=file.name,
                                  code="masterdata_schema_invalid") from None
        for keyword in (OWNER, STEWARD):
            if not isinstance(schema.get(keyword), str) or not schema[keyword]:
                raise DefinitionError(f"The type names no '{keyword}' (a role) at its root: every "
                                      "master-data type names the role that owns it (approves changes of "
                                      "its records) and the role that stewards it.", file=file.name,
                                      code="masterdata_schema_invalid")
        found[file.name[: -len(SUFFIX)]] = (text, schema)
    for name, (_, schema) in found.items():
        for target in references_in(schema):
            if target not in found:
                raise DefinitionError(f"'{REF}: {target}' names a type that is not declared.",
                                      file=f"{name}{SUFFIX}", code="masterdata_schema_invalid")
    return found


def references_in(schema: Any) -> set[str]:
    """The type names that ``x-ref`` keywords anywhere in the schema point to."""
    if isinstance(schema, dict):
        own = {schema[REF]} if isinstance(schema.get(REF), str) else set()
        return own.union(*(references_in(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(references_in(v) for v in schema))
    return set()


def schema_hash(schema: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON: re-indenting a file does not make a new version."""
    return audit.sha256_hex(audit.canonical_json(schema))


def load(session: Session, clock: Clock, actor: Actor, path: Path | None = None
         ) -> list[tuple[MasterDataType, bool]]:
    """Store every type of the folder; ``(type, True)`` where a new version was stored.

    Raises DefinitionError (``unknown_role``) when a type's owner or steward role does not exist."""
    results = []
    known = role_names(session)
    for name, (text, schema) in read_folder(path).items():
        for keyword in (OWNER, STEWARD):
            if schema[keyword] not in known:
                raise DefinitionError(f"'{keyword}: {schema[keyword]}' names no existing role; known roles: "
                                      f"{', '.join(sorted(known))}. {HOW_TO_ADD_A_ROLE}",
                                      file=f"{name}{SUFFIX}", code="unknown_role")
        digest = schema_hash(schema)
        latest = _latest(session, name)
        if latest is not None and latest.schema_hash == digest:
            results.append((latest, False))
            continue
        row = MasterDataType(name=name, version=(latest.version + 1) if latest else 1,
                             title=str(schema.get("title") or name)[:200], schema_text=text,
                             schema_hash=digest, loaded_at=clock.now(), loaded_by=actor.id)
        session.add(row)
        session.flush()
        audit.record(session, actor, "masterdata.type_loaded", "masterdata_type", name,
                     f"master-data type {name} v{row.version}", at=row.loaded_at,
                     before=({"version": latest.version, "schema_hash": latest.schema_hash}
                             if latest else None),
                     after={"version": row.version, "schema_hash": digest})
        results.append((row, True))
    return results


def _latest(session: Session, name: str) -> MasterDataType | None:
    return session.scalars(select(MasterDataType).where(MasterDataType.name == name)
                           .order_by(MasterDataType.version.desc()).limit(1)).first()


def current(session: Session, name: str) -> MasterDataType:
    """The latest version of the type; NotFound (``masterdata_type_not_found``) when there is none."""
    row = _latest(session, name)
    if row is None:
        raise NotFound(f"There is no master-data type '{name}'.", code="masterdata_type_not_found")
    return row


def list_current(session: Session) -> list[MasterDataType]:
    latest = (select(MasterDataType.name, func.max(MasterDataType.version).label("version"))
              .group_by(MasterDataType.name).subquery())
    return list(session.scalars(select(MasterDataType).join(
        latest, (MasterDataType.name == latest.c.name) & (MasterDataType.version == latest.c.version))
        .order_by(MasterDataType.name)))


def stewardship(schema: dict[str, Any]) -> dict[str, str | None]:
    """``{owner_role, steward_role}`` the type's schema names (None in a type stored before they were
    required)."""
    return {"owner_role": schema.get(OWNER), "steward_role": schema.get(STEWARD)}


def schema_of(row: MasterDataType) -> dict[str, Any]:
    return _parsed(row.schema_hash, row.schema_text)


@lru_cache(maxsize=256)
def _parsed(digest: str, text: str) -> dict[str, Any]:
    return json.loads(text)  # type: ignore[no-any-return]
