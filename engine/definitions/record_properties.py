"""Lint of the properties that lock records and bind signatures to them (``engine.runtime.record_locks``,
``engine.signed_records``), and of those that flag a completed task as evidence of a named fact in a record
(``exception.fact``, ``exception.when``, ``exception.text``: read by a pack, e.g. ``gmp.batch_flags``): a
process owner learns at deploy time, not at the disposition, that one is wrong."""

from __future__ import annotations

import re
from typing import Any

from engine.definitions.properties import properties_of
from engine.errors import DefinitionError
from engine.sandbox import check_expression

_KIND = re.compile(r"^[A-Za-z_]\w*$")


def check_record_properties(task_spec: Any, element_id: str, file: str | None,
                            line: int | None) -> list[DefinitionError]:
    props = properties_of(task_spec)
    problems: list[DefinitionError] = []

    def problem(message: str, code: str) -> None:
        problems.append(DefinitionError(message, file=file, element_id=element_id, line=line, code=code))

    def expression(name: str, source: str, code: str = "bad_record_property") -> None:
        try:
            check_expression(source, element_id=element_id, file=file)
        except DefinitionError as exc:
            problem(f"{name}: {exc.message}", code)

    for name in ("record.lock", "record.unlock"):
        if name in props:
            expression(name, props[name])
    if "signature.record" in props:
        kind, colon, source = props["signature.record"].partition(":")
        if not colon or not _KIND.match(kind) or not source.strip():
            problem("signature.record must be '<record kind>:<key expression>', e.g. 'batch:batch_id'.",
                    "bad_record_property")
        else:
            expression("signature.record", source)
        if not props.get("signature.meaning"):
            problem("signature.record is set but signature.meaning is not.", "bad_record_property")
    if "exception.fact" in props and not _KIND.match(props["exception.fact"].strip()):
        problem("exception.fact names a fact, one word such as 'overrides'.", "bad_exception_property")
    for name in ("exception.when", "exception.text"):
        if name in props:
            if "exception.fact" not in props:
                problem(f"{name} is set but exception.fact is not.", "bad_exception_property")
            expression(name, props[name], "bad_exception_property")
    if "record.reopen" in props and props["record.reopen"].strip().lower() not in ("true", "false"):
        problem("record.reopen is 'true' or 'false'.", "bad_record_property")
    return problems
