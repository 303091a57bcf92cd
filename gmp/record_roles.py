"""Which task of a batch's processes plays which part in its batch record: the user task's model property
``record.role``, checked by lint, never its element id.

The batch record (``gmp.batch_record``) reads the completed tasks of a batch's instances and asks each for its
role: ``perform`` gives a step's entered values, ``verify`` its second-person verification, and so on. A model
may name its tasks as it likes; lint refuses a role outside ``ROLES``, a role on anything but a user task, and
a process the record reads (``NEEDED``, by process key) that lacks one of the roles the record needs of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import select

from engine.definitions.properties import properties_of
from engine.errors import DefinitionError
from engine.spiff.parsing import BPMN_NS, NS
from engine.store.models import Deployment, ProcessInstance

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from engine.runtime.specs import SpecCache
    from engine.spiff.parsing import ParsedDefinition
    from engine.store.models import HumanTask

PROPERTY = "record.role"

ROLES = {
    # sop_step: one SOP step of a batch
    "perform": "performs the step: the entered values, equipment and materials (the last one stands)",
    "out_of_limit": "confirms an out-of-limit value as a deviation, or corrects it",
    "deviation_assessment": "assesses the step's deviation (classification, decision)",
    "hold_decision": "QA's decision on a batch held for the step's deviation",
    "verify": "verifies the step (second person)",
    # sop_execution: the batch
    "yield": "records the produced quantity",
    # sop_correction: a recorded value corrected afterwards
    "correction_request": "requests the correction (parameter, new value, reason)",
    "correction_approval": "approves or rejects the requested correction",
    # batch_release
    "review": "reviews the record or its audit trail",
    "deviation_closure": "closes a deviation (root cause, CAPA)",
    "disposition": "decides the batch's disposition (released, rejected)",
    # batch_reopen
    "reopen_approval": "approves or rejects reopening a decided batch",
}

# the roles the batch record needs of each process it reads
NEEDED = {
    "sop_step": ("perform", "out_of_limit", "deviation_assessment", "hold_decision", "verify"),
    "sop_execution": ("yield",),
    "sop_correction": ("correction_request", "correction_approval"),
    "batch_release": ("review", "deviation_closure", "disposition"),
    "batch_reopen": ("reopen_approval",),
}


def _owner(prop: etree._Element) -> etree._Element | None:
    """The BPMN element whose extension properties hold ``prop``."""
    return next((a for a in prop.iterancestors() if etree.QName(a.tag).namespace == BPMN_NS
                 and etree.QName(a.tag).localname != "extensionElements"), None)


def check(parsed: ParsedDefinition) -> list[DefinitionError]:
    """Lint: every ``record.role`` is a known role on a user task; a process the batch record reads has
    every role the record needs of it."""
    problems, found = [], set()
    for name, root in parsed.trees.items():
        for prop in root.iterfind(f".//spiffworkflow:property[@name='{PROPERTY}']", NS):
            owner, role = _owner(prop), prop.get("value") or ""
            where = {"file": name, "line": prop.sourceline,
                     "element_id": owner.get("id") if owner is not None else None}
            if owner is None or etree.QName(owner.tag).localname != "userTask":
                problems.append(DefinitionError(f"{PROPERTY} belongs on a user task.",
                                                code="record_role_misplaced", **where))
            elif role not in ROLES:
                known = ", ".join(ROLES)
                problems.append(DefinitionError(f"Unknown {PROPERTY} '{role}'; use one of {known}.",
                                                code="unknown_record_role", **where))
            else:
                found.add(role)
    missing = [role for role in NEEDED.get(parsed.key, ()) if role not in found]
    if missing:
        problems.append(DefinitionError(
            f"The batch record reads the process '{parsed.key}' and needs a user task for each of the roles "
            f"{', '.join(missing)} ({PROPERTY}).", file=min(parsed.trees, default=None),
            element_id=parsed.key, code="record_role_missing"))
    return problems


def roles_in(parsed: ParsedDefinition) -> dict[str, str]:
    """Element id -> role, for the user tasks of a parsed deployment (its call activities' processes too)."""
    found = {}
    for spec in (parsed.spec, *parsed.subprocess_specs.values()):
        for task_spec in spec.task_specs.values():
            role = properties_of(task_spec).get(PROPERTY)
            if role and getattr(task_spec, "bpmn_id", None):
                found[task_spec.bpmn_id] = role
    return found


class RoleIndex:
    """The role of each completed task of some instances, read from the deployment each instance runs."""

    def __init__(self, session: Session, specs: SpecCache, rows: list[ProcessInstance]) -> None:
        by_deployment: dict[int, dict[str, str]] = {}
        for deployment_id in {row.deployment_id for row in rows}:
            by_deployment[deployment_id] = roles_in(specs.get_by_id(session, deployment_id))
        self._roles = {row.id: by_deployment[row.deployment_id] for row in rows}

    def of(self, task: HumanTask) -> str | None:
        return self._roles.get(int(task.instance_id), {}).get(task.element_id)

    def last(self, tasks: list[HumanTask], role: str) -> HumanTask | None:
        """The last task of ``tasks`` (in completion order) that plays ``role``."""
        return next((t for t in reversed(tasks) if self.of(t) == role), None)

    def every(self, tasks: list[HumanTask], *roles: str) -> list[Any]:
        return [t for t in tasks if self.of(t) in roles]


def ids_in_instance(session: Session, specs: SpecCache, instance_id: int, role: str) -> list[str]:
    """The element ids of the user tasks that play ``role`` in the deployment an instance runs."""
    deployment_id = session.scalar(select(ProcessInstance.deployment_id)
                                   .where(ProcessInstance.id == instance_id))
    if deployment_id is None:
        return []
    return [element for element, r in roles_in(specs.get_by_id(session, deployment_id)).items() if r == role]


def ids_in_process(session: Session, specs: SpecCache, process_key: str, role: str) -> list[str]:
    """The element ids of the user tasks that play ``role`` in any deployed version of a process."""
    found: set[str] = set()
    for deployment_id in session.scalars(select(Deployment.id).where(Deployment.key == process_key)):
        found |= {element for element, r in roles_in(specs.get_by_id(session, deployment_id)).items()
                  if r == role}
    return sorted(found)
