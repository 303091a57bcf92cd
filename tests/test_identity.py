"""Identity and access: password policy and age, one-time passwords, lockout, deactivation, roles;
every change audited with who, when, what and (for changes to existing data) why."""

from __future__ import annotations

from itertools import pairwise

import pytest

from engine.errors import AuthenticationFailed, Conflict, ValidationFailed
from tests.conftest import ADMIN
from tests.engine_support import configure
from tests.signing_support import PASSWORD


def events(engine, action):  # type: ignore[no-untyped-def]
    return [e for e in engine.audit_events(action=action, limit=500)]


@pytest.mark.parametrize("password, code", [("short7!", "password_too_short"),
                                            ("newcomer", "password_is_username")])
def test_a_password_that_breaks_the_policy_is_refused(engine, password, code):
    with pytest.raises(ValidationFailed) as err:
        engine.add_user(ADMIN, "newcomer", "New Comer", password, ["operator"])
    assert err.value.code == code


def test_none_of_the_last_5_passwords_can_be_chosen_again(engine, people):
    passwords = [PASSWORD] + [f"password number {i}" for i in range(1, 5)]
    for old, new in pairwise(passwords):
        engine.change_password("olivia", old, new)
    for reused in passwords:
        with pytest.raises(ValidationFailed) as err:
            engine.change_password("olivia", passwords[-1], reused)
        assert err.value.code == "password_reused"
    engine.change_password("olivia", passwords[-1], "password number 5")
    engine.change_password("olivia", "password number 5", PASSWORD)  # the 6th-last is allowed again
    assert engine.authenticate("olivia", PASSWORD).username == "olivia"


def test_a_changed_password_is_audited_without_the_password(engine, people):
    engine.change_password("olivia", PASSWORD, "a brand new secret")
    [event] = events(engine, "user.password_changed")
    assert (event.actor_id, event.object_id) == ("olivia", "olivia")
    assert "a brand new secret" not in str(event.after) and "argon2" not in str(event.after)


def test_a_username_cannot_be_created_again_after_deactivation(engine, people):
    engine.set_user_active(ADMIN, "oscar", False, "left the company")
    with pytest.raises(Conflict) as err:
        engine.add_user(ADMIN, "oscar", "Another Oscar", PASSWORD, ["operator"])
    assert err.value.code == "username_taken"


def test_a_deactivated_user_cannot_log_in_until_activated_again(engine, people):
    engine.set_user_active(ADMIN, "oscar", False, "left the company")
    with pytest.raises(AuthenticationFailed) as err:
        engine.authenticate("oscar", PASSWORD)
    assert err.value.code == "account_inactive"
    engine.set_user_active(ADMIN, "oscar", True, "rehired")
    assert engine.authenticate("oscar", PASSWORD).username == "oscar"
    assert [e.reason for e in events(engine, "user.deactivated") + events(engine, "user.activated")] == [
        "left the company", "rehired"]


def test_five_failed_logins_lock_the_account_until_an_admin_unlocks_it(engine, people):
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            engine.authenticate("olivia", "wrong password")
    with pytest.raises(AuthenticationFailed) as err:
        engine.authenticate("olivia", PASSWORD)
    assert err.value.code == "account_locked"
    olivia = next(u for u in engine.list_users() if u.username == "olivia")
    assert (olivia.locked, olivia.failed_attempts) == (True, 5)
    assert len(events(engine, "user.login_failed")) == 5 and len(events(engine, "user.locked")) == 1
    engine.unlock_user(ADMIN, "olivia", "identity confirmed by phone")
    assert engine.authenticate("olivia", PASSWORD).username == "olivia"
    [unlock] = events(engine, "user.unlocked")
    assert (unlock.actor_id, unlock.reason, unlock.before["locked"], unlock.after["locked"]) == (
        ADMIN.id, "identity confirmed by phone", True, False)


def test_the_lockout_threshold_is_configurable(engine, people):
    configure(engine, lockout_attempts=2)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            engine.authenticate("olivia", "wrong password")
    assert next(u for u in engine.list_users() if u.username == "olivia").locked


def test_an_admin_reset_issues_a_one_time_password_that_must_be_changed_before_login(engine, people):
    one_time = engine.reset_password(ADMIN, "olivia", "forgot her password")
    with pytest.raises(AuthenticationFailed) as err:
        engine.authenticate("olivia", one_time)
    assert err.value.code == "password_change_required"
    engine.change_password("olivia", one_time, "my own new secret")
    assert engine.authenticate("olivia", "my own new secret").username == "olivia"
    [reset] = events(engine, "user.password_reset")
    assert (reset.actor_id, reset.reason, reset.after["must_change_password"]) == (
        ADMIN.id, "forgot her password", True)
    assert one_time not in str(reset.after)


def test_a_password_older_than_180_days_must_be_changed_at_login(engine, people, clock):
    clock.advance(days=180)
    with pytest.raises(AuthenticationFailed) as err:
        engine.authenticate("olivia", PASSWORD)
    assert err.value.code == "password_change_required"
    engine.change_password("olivia", PASSWORD, "a fresher secret")
    assert engine.authenticate("olivia", "a fresher secret").username == "olivia"


def test_role_grant_and_removal_are_audited_with_who_when_what_and_why(engine, people, clock):
    engine.grant_role(ADMIN, "paula", "qa", "qualified as QA reviewer (training T-17)")
    assert engine.principal("paula").roles == {"planner", "qa"}
    clock.advance(minutes=5)
    engine.remove_role(ADMIN, "paula", "qa", "moved to planning only")
    assert engine.principal("paula").roles == {"planner"}
    granted, removed = events(engine, "user.role_granted")[0], events(engine, "user.role_removed")[0]
    assert (granted.actor_id, granted.object_id, granted.before["roles"], granted.after["roles"]) == (
        ADMIN.id, "paula", ["planner"], ["planner", "qa"])
    assert granted.reason == "qualified as QA reviewer (training T-17)"
    assert (removed.after["roles"], removed.reason) == (["planner"], "moved to planning only")
    assert removed.at > granted.at and removed.at.tzinfo is not None


CHANGES = {
    "grant": lambda e, r: e.grant_role(ADMIN, "paula", "qa", r),
    "removal": lambda e, r: e.remove_role(ADMIN, "paula", "planner", r),
    "deactivation": lambda e, r: e.set_user_active(ADMIN, "paula", False, r),
    "reset": lambda e, r: e.reset_password(ADMIN, "paula", r),
    "unlock": lambda e, r: e.unlock_user(ADMIN, "paula", r),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_change_to_an_existing_user_without_a_reason_is_refused(engine, people, change):
    before = len(engine.audit_events(limit=1000))
    for reason in (None, "  "):
        with pytest.raises(ValidationFailed) as err:
            CHANGES[change](engine, reason)
        assert err.value.code == "reason_required"
    assert len(engine.audit_events(limit=1000)) == before
    assert engine.principal("paula").roles == {"planner"}
