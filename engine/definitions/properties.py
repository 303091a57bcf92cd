"""The extension properties the engine enforces (``spiffworkflow:properties`` on BPMN elements)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.errors import DefinitionError

SIGNATURE_MEANINGS = ("Performed", "Verified", "Reviewed", "Approved", "Rejected", "Released", "Quarantined")
# signature.distinctFrom rules (four eyes), comma separated; who may NOT sign the task:
#   initiator          who started the instance
#   all                the initiator and everyone who signed anything in the instance before
#   performer:<taskId> who completed that task last (the entry that stands);  signers:<taskId>  who signed it
#   variable:<name>    the usernames in that variable (a list or one name; ``a.b`` reads key b of
#                      variable a); the variable is the engine's: a client cannot set it (see
#                      ``protected_variables``), so it must be written by a script or a service task
#   related            everyone who completed or signed a task in an instance of another process with
#                      this instance's business key, or in any instance whose key lies below it
#                      (``<key>/...``): e.g. a batch's execution, corrections and reopens share the batch
#                      id, its steps lie below it; an earlier run of this same process on the same key
#                      (the release before a reopen) does not count
_DISTINCT = re.compile(r"^(initiator|all|related|(performer|signers|variable):[A-Za-z_][\w.-]*)$")


@dataclass(frozen=True)
class TaskProperties:
    form_id: str | None
    instructions: str | None
    meanings: tuple[str, ...]          # allowed signature meanings; empty: no signature required
    distinct_from: tuple[str, ...]     # "initiator", "all", "related", "performer:<taskId>",
                                       # "signers:<taskId>", "variable:<name>" (see _DISTINCT)
    due: str | None                    # ISO-8601 duration expression, e.g. "'P2D'"
    candidate_roles: str | None = None  # expression over the instance data: a role (or list of roles) that
                                        # replaces the lane's when the task opens; nothing: the lane's

    @property
    def signature_meaning(self) -> str | None:
        return ",".join(self.meanings) or None


def properties_of(task_spec: Any) -> dict[str, str]:
    return dict((getattr(task_spec, "extensions", None) or {}).get("properties", {}))


def split_list(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def task_properties(task_spec: Any) -> TaskProperties:
    props = properties_of(task_spec)
    return TaskProperties(
        form_id=props.get("formId") or None,
        instructions=props.get("instructions") or getattr(task_spec, "documentation", None) or None,
        meanings=split_list(props.get("signature.meaning")),
        distinct_from=split_list(props.get("signature.distinctFrom")),
        due=props.get("dueIn") or None,
        candidate_roles=props.get("candidateRoles") or None,
    )


def check_properties(props: TaskProperties, task_ids: set[str], forms: set[str], element_id: str,
                     file: str | None, line: int | None) -> list[DefinitionError]:
    """Problems with one task's properties, in words a process owner can act on."""
    problems = []

    def problem(message: str, code: str) -> None:
        problems.append(DefinitionError(message, file=file, element_id=element_id, line=line, code=code))

    if props.form_id and props.form_id not in forms:
        problem(f"The task uses form '{props.form_id}', which is neither in the bundle nor in the forms "
                "folder.", "unknown_form")
    for meaning in props.meanings:
        if meaning not in SIGNATURE_MEANINGS:
            problem(f"Unknown signature meaning '{meaning}'; use one of {', '.join(SIGNATURE_MEANINGS)}.",
                    "unknown_signature_meaning")
    for rule in props.distinct_from:
        if not _DISTINCT.match(rule):
            problem(f"signature.distinctFrom '{rule}' is not 'initiator', 'all', 'related', "
                    "'performer:<taskId>', 'signers:<taskId>' or 'variable:<name>'.", "bad_distinct_from")
        elif ":" in rule and not rule.startswith("variable:") and rule.split(":", 1)[1] not in task_ids:
            problem(f"signature.distinctFrom names task '{rule.split(':', 1)[1]}', which the process does "
                    "not have.", "bad_distinct_from")
    if props.distinct_from and not props.meanings:
        problem("signature.distinctFrom is set but signature.meaning is not.", "bad_distinct_from")
    return problems


def protected_variables(specs: Any) -> frozenset[str]:
    """The variables that ``variable:<name>`` four-eyes rules of these task specs read (the first part of a
    dotted name): the engine's own, which no client may set in start variables or task data."""
    found = {rule.split(":", 1)[1].split(".", 1)[0]
             for spec in specs for ts in spec.task_specs.values()
             for rule in split_list(properties_of(ts).get("signature.distinctFrom"))
             if rule.startswith("variable:")}
    # who may do a task must not be chosen by a client either: the variable a candidateRoles expression reads
    found |= {match.group(0) for spec in specs for ts in spec.task_specs.values()
              if (match := _LEADING_NAME.match(properties_of(ts).get("candidateRoles") or ""))}
    return frozenset(found)


_LEADING_NAME = re.compile(r"[A-Za-z_]\w*")
