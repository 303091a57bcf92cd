"""What a decision is about, for the task page: the facts a decider must see beside the form.

A process names no Python here: each entry of ``CONTEXTS`` reads what an instance of that process already
holds (its variables, the records it is about) and the models that decided (the DMN, with the rule that
fired). The change control shows the change side by side (a master-data or model diff, for a process the two
diagrams), the request's reason, the risk class and why, and the impact assessment; the batch release shows
the exceptions with their evidence, the record's hash, its copies, deviations and audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine import decisions, screens
from engine.errors import GmpflowError
from engine.store.models import Deployment
from gmp import batch_record

if TYPE_CHECKING:
    from engine.services import Gmpflow

IMPACT_FIELDS = ("impacted_products", "open_orders", "training_needed", "validation_needed", "impact_comment")
REQUEST_FIELDS = ("reason", "effective_date", "product_impact")


def change_context(engine: Gmpflow, row: Any, variables: dict[str, Any]) -> dict[str, Any]:
    change, diff = variables.get("change") or {}, variables.get("diff")
    context: dict[str, Any] = {
        "kind": "change", "subject": change.get("label"), "subject_kind": variables.get("subject_kind"),
        "owner_role": change.get("owner_role"), "steward_role": change.get("steward_role"),
        "request": {k: variables.get(k) for k in REQUEST_FIELDS},
        "risk": None, "impact": None, "diff": diff, "diagrams": None}
    if variables.get("change_class"):
        context["risk"] = {"class": variables["change_class"], "approvers": variables.get("approvers"),
                           "escalate_after": variables.get("escalate_after"),
                           "why": _why_classified(engine, row, variables)}
    if variables.get("impacted_products") is not None:
        context["impact"] = {k: variables.get(k) for k in IMPACT_FIELDS}
    if diff and diff.get("record_type") == "process_deployment":
        context["diagrams"] = _diagrams(engine, diff)
    return context


def _why_classified(engine: Gmpflow, row: Any, variables: dict[str, Any]) -> list[dict[str, str]]:
    """The rules of classify_change.dmn that match this change (the one that decided, for UNIQUE)."""
    with engine.db.read() as session:
        parsed = engine.runtime.specs.get_by_id(session, row.deployment_id)
    try:
        data = {k: variables.get(k) for k in ("diff", "product_impact")}
        hits = decisions.evaluate(parsed, "classify", data, engine.runtime.script_engine)
    except GmpflowError:
        return []
    return [{"rule": h.rule_id, "description": h.description} for h in hits]


def _diagrams(engine: Gmpflow, diff: dict[str, Any]) -> dict[str, Any]:
    """The process diagram of the version in force before and of the proposed one, with what changed."""
    with engine.db.read() as session:
        versions = {d.version: d for d in session.scalars(select(Deployment).where(
            Deployment.key == diff["record_key"],
            Deployment.version.in_([v for v in (diff.get("from_version"), diff.get("to_version")) if v])))}

        def xml(version: int | None) -> str | None:
            dep = versions.get(version) if version else None
            return screens.diagram_xml(engine.runtime.specs.get(dep)) if dep is not None else None
        return {"before": xml(diff.get("from_version")), "after": xml(diff.get("to_version")),
                "marks": diff.get("elements") or {}}


def batch_context(engine: Gmpflow, row: Any, variables: dict[str, Any]) -> dict[str, Any] | None:
    batch_id = variables.get("batch_id")
    if not batch_id:
        return None
    record = batch_record.build(engine, str(batch_id))
    return {"kind": "batch", "batch_id": batch_id, "sha256": record["sha256"],
            "exceptions": record["exceptions"],
            "facts": record["facts"], "deviations": record["deviations"],
            "audit_trail": record.get("audit_trail") or [], "disposition": record["disposition"]}


CONTEXTS: dict[str, Callable[[Gmpflow, Any, dict[str, Any]], dict[str, Any] | None]] = {
    "change_control": change_context,
    "batch_release": batch_context,
}


def build(engine: Gmpflow, row: Any, variables: dict[str, Any]) -> dict[str, Any] | None:
    """The context of a task of instance ``row`` (None for a process that has none)."""
    key = "change_control" if row.process_key == engine.change_control_process else row.process_key
    make = CONTEXTS.get(key)
    return make(engine, row, variables) if make is not None else None
