"""Shared decisions: the active DMN-only deployment of a key, found when a business rule task runs, and the
engine's API to evaluate a decision by key (``evaluate_by_key``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dmn.decide import CompiledDmn, evaluate, task_data
from engine.errors import NotFound
from engine.runtime import rows
from engine.runtime.specs import SpecCache
from engine.store.db import Database
from engine.store.dbapi import dbapi
from engine.store.models import Deployment


def decision_service_keys(session: Session, keys: set[str]) -> set[str]:
    """Those of ``keys`` that name a deployed (any status) DMN-only bundle: what a process may call."""
    if not keys:
        return set()
    found = set()
    for dep in session.scalars(select(Deployment).where(Deployment.key.in_(sorted(keys)))):
        if dep.files and all(name.endswith(".dmn") for name in dep.files):
            found.add(dep.key)
    return found


class SharedDecisions:
    """``(key) -> (compiled, decision id, what to record)`` for the latest active version of a decision
    service, or None. Reads in its own short session (the deployment is committed long before)."""

    def __init__(self, db: Database, specs: SpecCache) -> None:
        self.db, self.specs = db, specs

    def __call__(self, key: str) -> tuple[CompiledDmn, str, dict[str, Any]] | None:
        with self.db.read() as session:
            try:
                ref = rows.latest_active(dbapi(session), key)
            except NotFound:
                return None
            parsed = self.specs.get_by_id(session, ref.id)
        if not parsed.is_decision_service or key not in parsed.decisions:
            return None
        return (
            parsed.decisions[key],
            key,
            {
                "key": key,
                "source": "shared",
                "version": ref.version,
                "deployment_id": ref.id,
                "content_hash": ref.content_hash,
            },
        )


def evaluate_by_key(
    shared: SharedDecisions, key: str, variables: dict[str, Any], decision_id: str | None = None
) -> dict[str, Any]:
    """Evaluate the active decision service ``key`` (or its decision ``decision_id``) over ``variables``:
    ``{decision, version, deployment_id, value, variables}``. Raises NotFound, DecisionFailed."""
    with shared.db.read() as session:
        ref = rows.latest_active(dbapi(session), key)
        parsed = shared.specs.get_by_id(session, ref.id)
    decision_id = decision_id or key
    if not parsed.is_decision_service or decision_id not in parsed.decisions:
        raise NotFound(
            f"The active version of '{key}' holds no decision '{decision_id}'.", code="decision_not_found"
        )
    compiled = parsed.decisions[decision_id]
    value = evaluate(compiled, decision_id, variables)
    return {
        "decision": decision_id,
        "version": ref.version,
        "deployment_id": ref.id,
        "value": compiled.cells.to_data(value),
        "variables": task_data(compiled, compiled.dmn.decisions[decision_id], value),
    }
