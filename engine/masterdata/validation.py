"""Checking a version's data: its type's JSON Schema (per-field errors keyed by JSON pointer), the
``x-key`` rule, and ``x-ref`` references to other records.

``x-ref`` is a custom keyword: the validator reports every referenced value as a marker error that
carries its location, and the references are then looked up in the store in one query per type.
(Keep ``x-ref`` out of ``anyOf``/``oneOf``/``not``: there its marker would count as a failure.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import canonical_json
from engine.masterdata.types import KEY, REF
from engine.store.models import MasterDataRecord


@dataclass(frozen=True)
class Reference:
    pointer: str    # where in the data
    type_name: str  # the type the value must be a key of
    key: str


def _mark_reference(validator: Any, target: str, instance: Any,
                    schema: dict[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, str):
        yield ValidationError(f"refers to {target} '{instance}'")


_Validator = validators.extend(Draft202012Validator, {REF: _mark_reference})


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import json

    return _Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def pointer(path: Iterable[Any]) -> str:
    """The JSON pointer (RFC 6901) of a path; ``""`` is the whole document."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def check(schema: dict[str, Any], data: Any, key: str) -> tuple[dict[str, str], list[Reference]]:
    """``(errors by JSON pointer, references)``; a missing required property is reported at its own
    pointer."""
    errors: dict[str, str] = {}
    references: list[Reference] = []
    for err in _validator(canonical_json(schema)).iter_errors(data):
        where = pointer(err.absolute_path)
        if err.validator == REF:
            references.append(Reference(where, str(err.validator_value), str(err.instance)))
        elif err.validator == "required" and isinstance(err.instance, dict):
            for name in err.validator_value:
                if name not in err.instance:
                    errors.setdefault(f"{where}/{name}", f"'{name}' is required")
        else:
            errors.setdefault(where, err.message)
    key_field = schema.get(KEY)
    if isinstance(key_field, str) and isinstance(data, dict) and key_field in data and data[key_field] != key:
        errors.setdefault(pointer([key_field]), f"must equal the record key '{key}'")
    return errors, references


def unknown_references(session: Session, references: list[Reference]) -> dict[str, str]:
    """Errors (by pointer) for references to records that do not exist; one query per referenced type."""
    wanted: dict[str, set[str]] = {}
    for ref in references:
        wanted.setdefault(ref.type_name, set()).add(ref.key)
    known: dict[str, set[str]] = {
        type_name: set(session.scalars(select(MasterDataRecord.key).where(
            MasterDataRecord.type_name == type_name, MasterDataRecord.key.in_(sorted(keys)))))
        for type_name, keys in wanted.items()}
    return {ref.pointer: f"there is no {ref.type_name} record '{ref.key}'"
            for ref in references if ref.key not in known[ref.type_name]}
