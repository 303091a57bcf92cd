"""What a process change changes, for the change-control process (``deployment.diff_summary``).

The counterpart of ``masterdata.diff_summary`` for a process deployment: the draft against the version active
now (all of it is new when none is), in the same shape (``changes`` as ``{path, before, after}``) so the DMN
and the approvers' page read both alike; plus the BPMN element ids a diagram marks and any signature the new
version would drop (which lint refuses, see ``engine.definitions.deployments.signature_problems``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.definitions import deployments, model_diff
from engine.definitions.bundle import Bundle
from engine.errors import NotFound
from engine.operations import Operation
from engine.store.models import Deployment

if TYPE_CHECKING:
    from engine.services import Gmpflow


def operations(engine: Gmpflow) -> list[Operation]:
    return [Operation(
        "deployment.diff_summary", lambda p, c: deployment_diff_summary(engine, p), idempotent=True,
        params_schema={"type": "object", "required": ["deployment_id"], "additionalProperties": False,
                       "properties": {"deployment_id": {"type": "integer"}}},
        description="What a draft process version changes against the active one: {record_type: "
                    "process_deployment, changes: [{path, before, after}] over BPMN elements and "
                    "properties, DMN rules and form fields, elements: {added, removed, changed}, "
                    "dropped_signatures, changes_limits, changes_critical}.")]


def deployment_diff_summary(engine: Gmpflow, params: dict[str, Any]) -> dict[str, Any]:
    with engine.db.read() as session:
        proposed = session.get(Deployment, params["deployment_id"])
        if proposed is None:
            raise NotFound(f"There is no deployment {params['deployment_id']}.", code="deployment_not_found")
        active = deployments.active_version(session, proposed.key)
        before = Bundle(dict(active.files)) if active is not None and active.id != proposed.id else None
        found = model_diff.diff(before, Bundle(dict(proposed.files)))
        return {"record_type": "process_deployment", "record_key": proposed.key,
                "from_version": active.version if before is not None and active is not None else None,
                "to_version": proposed.version, **found,
                "changed_paths": [c["path"] for c in found["changes"]],
                "changes_limits": False, "changes_critical": False}
