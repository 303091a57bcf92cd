"""Who holds a deployment under change control is state in its own column (gmpflow issue 16, item 4).

``change_request.open`` sets ``deployment.change_request_instance_id`` in the unit of work that audits the
claim (``change_request.subject_claimed``); ``deployment.activate`` and a later claim decide from the column,
never from the trail. The column is never cleared, as a master-data version's: it holds the deployment while
``in_review`` and its instance is unfinished, and names the approving instance after activation.
The operations are called here as the change-control model's service tasks call them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.bootstrap import deploy_shipped
from engine.errors import Conflict
from engine.operations import CallContext
from engine.services import Gmpflow
from engine.store.models import AuditEvent, Deployment
from gmp import governance
from gmp.governance import CLAIMED
from tests.conftest import ADMIN, ROOT
from tests.engine_support import request_of

CHANGE_CONTROL = ROOT / "gmp" / "processes" / "change_control"
DEMO = ROOT / "gmp" / "processes" / "demo_approval"


def a_draft(engine: Gmpflow, tmp_path: Path) -> int:
    """Version 2 of the demo process, a draft (version 1 is live); the change control came with init."""
    deploy_shipped(engine, ADMIN, CHANGE_CONTROL)
    engine.deploy(ADMIN, [DEMO])
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "demo_approval.bpmn").write_text((DEMO / "demo_approval.bpmn").read_text().replace(
        'name="Approve the request"', 'name="Approve the request (v2)"'))
    draft, _ = engine.deploy(ADMIN, [tmp_path / "v2"], activate=False)
    return draft.id


def change_request(engine: Gmpflow) -> int:
    """A change-control instance (waiting for its requester): the caller of the operations."""
    return engine.start_instance(ADMIN, "change_control", variables={"subject_kind": "deployment"}).id


def context(instance_id: int) -> CallContext:
    return CallContext(idempotency_key=f"task-of-{instance_id}", instance_id=instance_id, attempt=1)


def claim(engine: Gmpflow, instance_id: int, deployment_id: int) -> dict[str, Any]:
    return governance.open_request(engine, {"kind": "deployment", "deployment_id": deployment_id},
                                   context(instance_id))


def row(engine: Gmpflow, deployment_id: int) -> tuple[str, int | None, int | None]:
    dep = engine.get_deployment(deployment_id)
    return dep.status, dep.change_request_instance_id, dep.approved_by_instance_id


def claims(engine: Gmpflow, deployment_id: int) -> list[int]:
    with engine.db.read() as session:
        return [int(e["instance_id"]) for e in session.scalars(select(AuditEvent.after).where(
            AuditEvent.action == CLAIMED, AuditEvent.object_type == "deployment",
            AuditEvent.object_id == str(deployment_id)).order_by(AuditEvent.seq))]


def test_a_claim_sets_the_holder_with_its_audit_event_and_keeps_the_row_sealed(engine: Gmpflow,
                                                                               tmp_path: Path) -> None:
    draft = a_draft(engine, tmp_path)
    first = change_request(engine)
    assert row(engine, draft) == ("draft", None, None)
    assert claim(engine, first, draft)["accepted"] is True
    assert row(engine, draft) == ("in_review", first, None)
    assert claims(engine, draft) == [first]
    assert claim(engine, first, draft)["accepted"] is True  # a retried job: the same answer, nothing new
    assert claims(engine, draft) == [first]
    assert engine.verify_audit().ok


def test_a_second_change_request_is_refused_naming_the_holder_and_changes_nothing(engine: Gmpflow,
                                                                                  tmp_path: Path) -> None:
    draft = a_draft(engine, tmp_path)
    first, second = change_request(engine), change_request(engine)
    claim(engine, first, draft)
    answer = claim(engine, second, draft)
    assert answer["accepted"] is False
    assert (answer["error"]["code"], answer["error"]["instance_id"]) == ("change_request_in_progress", first)
    assert f"already under change request {first}" in answer["error"]["message"]
    assert row(engine, draft) == ("in_review", first, None) and claims(engine, draft) == [first]


def test_a_finished_holder_holds_nothing_and_the_next_request_takes_the_deployment_over(
        engine: Gmpflow, tmp_path: Path) -> None:
    draft = a_draft(engine, tmp_path)
    first, second = change_request(engine), change_request(engine)
    claim(engine, first, draft)
    engine.change_instance_status(request_of(engine, ADMIN, "withdrawn"), first, "terminate")
    assert claim(engine, second, draft)["accepted"] is True
    assert row(engine, draft) == ("in_review", second, None) and claims(engine, draft) == [first, second]
    assert engine.verify_audit().ok
    with pytest.raises(Conflict) as refused:  # the finished one may no longer activate it
        governance.activate(engine, {"deployment_id": draft}, context(first))
    assert refused.value.code == "change_request_not_holder"


def test_the_column_not_the_trail_decides_who_may_activate(engine: Gmpflow, tmp_path: Path) -> None:
    """The trail says ``first`` claimed it; the column, rewritten by the engine's own writer (sealed) on this
    test database, says ``second``: the activation follows the column."""
    from engine.definitions import deployments

    draft = a_draft(engine, tmp_path)
    first, second = change_request(engine), change_request(engine)
    claim(engine, first, draft)
    with engine.db.unit_of_work() as session:
        deployments.hold_for_review(session, session.get(Deployment, draft), second)
    assert claims(engine, draft) == [first]
    with pytest.raises(Conflict) as refused:
        governance.activate(engine, {"deployment_id": draft}, context(first))
    assert refused.value.code == "change_request_not_holder"
    assert row(engine, draft) == ("in_review", second, None)
    answer = governance.activate(engine, {"deployment_id": draft}, context(second))
    assert (answer["status"], answer["approved_by_instance_id"]) == ("active", second)
    # kept after activation: the request that held it is the one that approved it
    assert row(engine, draft) == ("active", second, second)
    assert engine.verify_audit().ok


def test_a_deployment_never_claimed_cannot_be_activated_by_a_change_request(engine: Gmpflow,
                                                                            tmp_path: Path) -> None:
    draft = a_draft(engine, tmp_path)
    with pytest.raises(Conflict) as refused:
        governance.activate(engine, {"deployment_id": draft}, context(change_request(engine)))
    assert refused.value.code == "change_request_not_holder"
    assert row(engine, draft) == ("draft", None, None)
