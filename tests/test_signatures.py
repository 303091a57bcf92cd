"""Electronic signatures: required where the model says, by the logged-in user with the password
again, with an allowed meaning, four eyes; stored bound to exactly what was signed; tampering found."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from engine.audit import canonical_json, sha256_hex
from engine.errors import PermissionDenied, SignatureRejected
from engine.states import TaskState
from engine.store.models import HumanTask, Signature
from tests.conftest import ADMIN
from tests.signing_support import PASSWORD, open_task, run_to_approval, sig


def raw(engine, *statements: str) -> None:  # type: ignore[no-untyped-def]
    """SQL run directly, as someone with database access would, bypassing the engine."""
    with engine.db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def approve_task(engine, people, instance):  # type: ignore[no-untyped-def]
    return open_task(engine, people["quinn"], instance.id, "approve")


def rejected(engine, who, task_id, data, signature) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureRejected) as err:
        engine.complete_task(who, task_id, data, signature)
    return err.value.code


def failed_attempts(engine, username: str) -> int:  # type: ignore[no-untyped-def]
    return next(u.failed_attempts for u in engine.list_users() if u.username == username)


# -- a good signature ---------------------------------------------------------------------------------------
def test_a_signed_completion_stores_a_signature_bound_to_exactly_what_was_signed(engine, people,
                                                                                 signed_release, clock):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    engine.complete_task(people["quinn"], task.id, {"decision": "release"}, sig("quinn", "Approved"))
    with engine.session() as session:
        rows = session.scalars(select(Signature).where(Signature.instance_id == instance.id)
                               .order_by(Signature.id)).all()
    assert [r.meaning for r in rows] == ["Verified", "Approved"]
    approval = rows[1]
    assert approval.printed_name == "Quinn Example" and approval.signed_at == clock.now()
    assert approval.record == {
        "definition_hash": signed_release.content_hash, "instance_id": instance.id, "task_id": task.task_guid,
        "task_name": "Approve the batch", "element_id": "approve", "data": {"decision": "release"},
        "meaning": "Approved", "signer": "quinn", "signed_at": clock.now().isoformat(timespec="microseconds")}
    assert approval.record_hash == sha256_hex(canonical_json(approval.record))
    created = [e for e in engine.audit_events(action="signature.created", limit=100)]
    assert [(e.actor_id, e.object_id, e.after["meaning"]) for e in created] == [
        ("oscar", str(rows[0].id), "Verified"), ("quinn", str(approval.id), "Approved")]
    assert engine.verify_audit().ok


def test_the_manifestation_shows_printed_name_time_with_zone_and_meaning(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    [shown] = engine.list_signatures(instance.id)
    assert (shown["printed_name"], shown["meaning"], shown["username"]) == ("Oscar Example", "Verified",
                                                                             "oscar")
    assert shown["signed_at"].endswith("+00:00")


# -- rejections -------------------------------------------------------------------------------------------
def test_signature_with_wrong_password_is_rejected_and_counted(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    code = rejected(engine, people["quinn"], task.id, {}, sig("quinn", "Approved", "not my password"))
    assert code == "signature_password_invalid"
    assert failed_attempts(engine, "quinn") == 1
    assert [e.actor_id for e in engine.audit_events(action="user.signing_failed")] == ["quinn"]
    assert open_task(engine, people["quinn"], instance.id, "approve").state == TaskState.OPEN
    assert len(engine.list_signatures(instance.id)) == 1
    assert engine.verify_audit().ok


def test_completing_a_task_that_needs_a_signature_without_one_is_rejected_and_not_counted(engine, people,
                                                                                          signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    assert rejected(engine, people["quinn"], task.id, {}, None) == "signature_required"
    assert failed_attempts(engine, "quinn") == 0
    assert rejected(engine, people["quinn"], task.id, {}, {"username": "quinn", "password": PASSWORD}) == \
        "signature_required"
    assert failed_attempts(engine, "quinn") == 1


def test_signing_in_the_name_of_another_user_is_rejected_and_counted(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    assert rejected(engine, people["quinn"], task.id, {},
                    sig("quentin", "Approved")) == "signature_user_mismatch"
    assert (failed_attempts(engine, "quinn"), failed_attempts(engine, "quentin")) == (1, 0)


def test_a_meaning_the_model_does_not_allow_is_rejected(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    for meaning in ("Released", "Approved by me"):
        assert rejected(engine, people["quinn"], task.id, {}, sig("quinn", meaning)) == \
            "signature_meaning_not_allowed"


def test_a_witness_cannot_be_the_performer(engine, people, signed_release):
    instance = engine.start_instance(people["olivia"].actor, "signed_release", "B-2")
    task = open_task(engine, people["olivia"], instance.id, "record_values")
    engine.complete_task(people["olivia"], task.id, {"quantity_kg": 3})
    witness = open_task(engine, people["olivia"], instance.id, "witness")
    assert rejected(engine, people["olivia"], witness.id, {},
                    sig("olivia", "Verified")) == "signature_four_eyes"
    engine.complete_task(people["oscar"], witness.id, {}, sig("oscar", "Verified"))


def test_the_initiator_cannot_approve(engine, people, signed_release):
    instance = run_to_approval(engine, people, initiator="dana", performer="olivia", witness="oscar")
    task = approve_task(engine, people, instance)
    assert rejected(engine, people["dana"], task.id, {}, sig("dana", "Approved")) == "signature_four_eyes"
    engine.complete_task(people["quinn"], task.id, {}, sig("quinn", "Approved"))


def test_the_performer_cannot_approve(engine, people, signed_release):
    instance = run_to_approval(engine, people, initiator="olivia", performer="dana", witness="oscar")
    task = approve_task(engine, people, instance)
    assert rejected(engine, people["dana"], task.id, {}, sig("dana", "Approved")) == "signature_four_eyes"


def test_the_witness_who_signed_cannot_also_approve(engine, people, signed_release):
    instance = run_to_approval(engine, people, initiator="olivia", performer="olivia", witness="dana")
    task = approve_task(engine, people, instance)
    assert rejected(engine, people["dana"], task.id, {}, sig("dana", "Approved")) == "signature_four_eyes"


# -- roles x actions -----------------------------------------------------------------------------------------
ROLE_TABLE = [
    # task,      user,      action,     allowed
    ("witness", "oscar", "claim", True), ("witness", "quinn", "claim", False),
    ("witness", "paula", "claim", False),
    ("witness", "oscar", "sign", True), ("witness", "quinn", "sign", False),
    ("witness", "ada", "sign", False),
    ("approve", "quinn", "claim", True), ("approve", "oscar", "claim", False),
    ("approve", "ada", "claim", False),
    ("approve", "quinn", "complete", True), ("approve", "oscar", "complete", False),
    ("approve", "quinn", "sign", True), ("approve", "oscar", "sign", False),
    ("approve", "paula", "sign", False),
]


@pytest.mark.parametrize("element_id, username, action, allowed", ROLE_TABLE,
                         ids=[f"{u}-{a}-{t}" for t, u, a, _ in ROLE_TABLE])
def test_only_holders_of_the_lane_role_may_claim_complete_or_sign(engine, people, signed_release, element_id,
                                                                  username, action, allowed):
    if element_id == "witness":
        instance = engine.start_instance(people["olivia"].actor, "signed_release", "B-3")
        engine.complete_task(people["olivia"],
                             open_task(engine, people["olivia"], instance.id, "record_values").id,
                             {"quantity_kg": 1})
        meaning = "Verified"
    else:
        instance = run_to_approval(engine, people)
        meaning = "Approved"
    with engine.session() as session:
        task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance.id,
                                                            HumanTask.element_id == element_id))
    who = people[username]

    def act() -> None:
        if action == "claim":
            engine.claim_task(who, task_id)
        else:
            engine.complete_task(who, task_id, {}, sig(username, meaning))

    if allowed:
        act()
    else:
        with pytest.raises(PermissionDenied) as err:
            act()
        assert err.value.code == "role_required"
        assert len(engine.list_signatures(instance.id)) == (0 if element_id == "witness" else 1)


# -- lockout, one-time and expired passwords -----------------------------------------------------------------
def test_five_failed_signings_lock_the_account_visibly_to_admins_and_audited(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    for _ in range(5):
        assert rejected(engine, people["quinn"], task.id, {}, sig("quinn", "Approved", "guess")) == \
            "signature_password_invalid"
    quinn = next(u for u in engine.list_users() if u.username == "quinn")
    assert (quinn.locked, quinn.failed_attempts) == (True, 5)
    [locked] = engine.audit_events(action="user.locked")
    assert (locked.object_id, locked.actor_id) == ("quinn", "system")
    assert rejected(engine, people["quinn"], task.id, {},
                    sig("quinn", "Approved")) == "signature_account_locked"
    engine.unlock_user(ADMIN, "quinn", "confirmed in person")
    engine.complete_task(people["quinn"], task.id, {}, sig("quinn", "Approved"))


def test_a_one_time_password_must_be_changed_before_signing(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    one_time = engine.reset_password(ADMIN, "quinn", "forgot password")
    assert rejected(engine, people["quinn"], task.id, {}, sig("quinn", "Approved", one_time)) == \
        "signature_password_change_required"
    engine.change_password("quinn", one_time, "a new private secret")
    engine.complete_task(people["quinn"], task.id, {}, sig("quinn", "Approved", "a new private secret"))


def test_an_expired_password_blocks_signing(engine, people, signed_release, clock):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    clock.advance(days=181)
    assert rejected(engine, people["quinn"], task.id, {}, sig("quinn", "Approved")) == \
        "signature_password_change_required"
    assert failed_attempts(engine, "quinn") == 0


def test_a_deactivated_user_cannot_sign(engine, people, signed_release):
    instance = run_to_approval(engine, people)
    task = approve_task(engine, people, instance)
    engine.set_user_active(ADMIN, "quinn", False, "left the company")
    assert rejected(engine, people["quinn"], task.id, {},
                    sig("quinn", "Approved")) == "signature_account_locked"


# -- the database and verification ---------------------------------------------------------------------------
@pytest.mark.parametrize("statement", ["UPDATE signature SET meaning = 'Rejected'", "DELETE FROM signature"],
                         ids=["update", "delete"])
def test_the_database_refuses_update_and_delete_on_signatures(engine, people, signed_release, statement):
    run_to_approval(engine, people)
    with pytest.raises(DBAPIError):
        raw(engine, statement)
    assert engine.verify_audit().ok


@pytest.fixture
def two_signed_instances(engine, people, signed_release):  # type: ignore[no-untyped-def]
    """Two instances, each with a witness signature; the signature triggers off, as an attacker could."""
    first = run_to_approval(engine, people, key="B-10")
    second = run_to_approval(engine, people, key="B-11")
    assert engine.verify_audit().ok
    if engine.db.is_postgres:
        raw(engine, "ALTER TABLE signature DISABLE TRIGGER USER")
        yield engine, first, second
        raw(engine, "ALTER TABLE signature ENABLE TRIGGER USER")
    else:
        raw(engine, "DROP TRIGGER signature_no_update", "DROP TRIGGER signature_no_delete")
        yield engine, first, second


def _guid(engine, instance_id: int, element_id: str) -> str:  # type: ignore[no-untyped-def]
    with engine.session() as session:
        return session.scalar(select(HumanTask.task_guid).where(HumanTask.instance_id == instance_id,
                                                                HumanTask.element_id == element_id))


def test_an_edited_signature_row_is_detected_by_verification(two_signed_instances):
    engine, first, _ = two_signed_instances
    raw(engine, "UPDATE signature SET meaning = 'Approved' WHERE id = 1")
    report = engine.verify_audit()
    assert not report.ok and report.reason.startswith("signature 1:")


def test_a_signature_moved_to_another_record_is_detected_by_verification(two_signed_instances):
    engine, first, second = two_signed_instances
    raw(engine, f"UPDATE signature SET instance_id = {second.id}, "
                f"task_guid = '{_guid(engine, second.id, 'witness')}'"
                " WHERE id = 1")
    report = engine.verify_audit()
    assert not report.ok and report.reason.startswith("signature 1:")


def test_a_signature_copied_with_a_rewritten_record_and_fresh_hash_is_detected(two_signed_instances):
    engine, first, second = two_signed_instances
    with engine.session() as session:
        original = session.get(Signature, 1)
        forged = dict(original.record, instance_id=second.id, task_id=_guid(engine, second.id, "witness"))
    forged_hash = sha256_hex(canonical_json(forged))
    raw(engine, f"UPDATE signature SET instance_id = {second.id}, task_guid = '{forged['task_id']}', "
                f"record_hash = '{forged_hash}', record = '{canonical_json(forged)}' WHERE id = 1")
    report = engine.verify_audit()
    assert not report.ok and report.reason.startswith("signature 1:")


def test_data_changed_after_signing_is_detected_by_verification(two_signed_instances):
    engine, first, _ = two_signed_instances
    raw(engine, f"UPDATE human_task SET data = '{{\"witnessed\": false}}' WHERE task_guid = "
                f"'{_guid(engine, first.id, 'witness')}'")
    report = engine.verify_audit()
    assert not report.ok and "signature 1:" in report.reason and "changed after" in report.reason


def test_a_deleted_signature_is_detected_by_verification(two_signed_instances):
    engine, _, _ = two_signed_instances
    raw(engine, "DELETE FROM signature WHERE id = 2")
    report = engine.verify_audit()
    assert not report.ok and report.reason.startswith("signature 2:")


def test_the_cli_audit_verify_names_a_broken_signature_and_exits_1(two_signed_instances, monkeypatch):
    from click.testing import CliRunner

    from engine.cli import main

    engine, first, _ = two_signed_instances
    monkeypatch.setattr("engine.cli._engine", lambda: engine)  # the test's database, no stray connections
    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 0
    raw(engine, "UPDATE signature SET meaning = 'Approved' WHERE id = 1")
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1 and "signature 1:" in result.output
