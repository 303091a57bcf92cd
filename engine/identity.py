"""Users and roles: unique usernames never reused, argon2 passwords, lockout after failed attempts.

Roles are what BPMN lanes name. Every change to a user or a role grant is audited (who, when, what);
changes to existing data made by someone else (grant, removal, activation, deactivation, reset,
unlock) also need a reason (21 CFR 11.10(d)(g), 11.300; Annex 11 §12).

Password rules: at least ``MIN_PASSWORD_LENGTH`` characters, not the username, none of the last
``PASSWORD_HISTORY`` passwords; older than ``PASSWORD_MAX_AGE_DAYS`` days, or issued by an admin
reset (a one-time password), it must be changed before the user may log in or sign. After ``lock_at``
failed attempts (``Config.lockout_attempts``: ``GMPFLOW_LOCKOUT_ATTEMPTS``, default 5), at login or at
signing, the account locks until an admin unlocks it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, integrity
from engine.audit import Actor
from engine.clock import Clock
from engine.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PasswordChangeRequired,
    PermissionDenied,
    ValidationFailed,
)
from engine.store.dbapi import DbApi
from engine.store.models import PasswordHistory, Role, User, UserRole

DEFAULT_ROLES = {
    "operator": "Performs SOP steps on the shop floor",
    "supervisor": "Supervises production; releases orders; assesses deviations",
    "planner": "Plans production orders",
    "qa": "Quality assurance: reviews, approves, releases batches",
    "process_owner": "Edits process models",
    "data_steward": "Owns master data",
    "admin": "Administers gmpflow: users, instances, incidents",
    "integration": "ERP/MES service accounts",
}
ADMIN_ROLE = "admin"
MIN_PASSWORD_LENGTH = 8
PASSWORD_HISTORY = 5          # a new password may not be any of the last 5 (the current one included)
PASSWORD_MAX_AGE_DAYS = 180   # after this a password must be changed before the user may log in or sign
ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{1,49}")  # a safe identifier: lanes and properties name it as is
_hasher = PasswordHasher()
_dummy_hashes: dict[int, str] = {}  # per hasher: what an unknown username is verified against


@dataclass(frozen=True)
class Principal:
    """An authenticated user as the services see it."""

    username: str
    full_name: str
    roles: frozenset[str]

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.full_name)

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user.username, user.full_name, frozenset(user.role_names))


HOW_TO_ADD_A_ROLE = ("An administrator creates a role with `gmpflow roles add NAME --description TEXT` or "
                     "POST /api/v1/roles {name, description, reason}.")


def ensure_default_roles(session: Session) -> None:
    existing = set(session.scalars(select(Role.name)))
    for name, description in DEFAULT_ROLES.items():
        if name not in existing:
            session.add(Role(name=name, description=description))


def role_names(session: Session) -> set[str]:
    return set(session.scalars(select(Role.name)))


def list_roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.name)))


def add_role(session: Session, clock: Clock, actor: Actor, name: str, description: str,
             reason: str | None) -> Role:
    """A new role that lanes, ``start.roles`` and ``message.senders`` may name and admins may grant.

    Raises ValidationFailed (``role_name_invalid``, ``reason_required``) or Conflict (``role_exists``).
    Roles are never deleted or renamed: a lane of a deployed model may name them.
    """
    reason = require_reason(reason)
    if not isinstance(name, str) or not ROLE_NAME.fullmatch(name):
        raise ValidationFailed("A role name is 2-50 lowercase letters, digits and '_', starting with a "
                               "letter.", errors={"name": "invalid"}, code="role_name_invalid")
    description = (description or "").strip()
    if len(description) > 300:
        raise ValidationFailed("A role's description has at most 300 characters.",
                               errors={"description": "too long"}, code="validation_failed")
    if session.get(Role, name) is not None:
        raise Conflict(f"The role '{name}' exists.", code="role_exists")
    role = Role(name=name, description=description)
    session.add(role)
    session.flush()
    audit.record(session, actor, "role.created", "role", name, name, at=clock.now(),
                 after={"name": name, "description": description}, reason=reason)
    return role


def get_user(session: Session, username: str, *, lock: bool = False) -> User:
    query = select(User).where(User.username == username)
    if lock:
        query = query.with_for_update()
    user = session.scalar(query)
    if user is None:
        raise NotFound(f"There is no user '{username}'.", code="user_not_found")
    return user


@dataclass(frozen=True)
class Account:
    """An account's sign-in state, as every API request checks it (``User`` has the same attributes)."""

    username: str
    full_name: str
    active: bool
    locked: bool
    must_change_password: bool
    password_changed_at: datetime


# Every API request names its user: the account and its roles in one statement, on the DB-API (the hot path).
_ACCOUNT = ("SELECT u.username, u.full_name, u.active, u.locked, u.must_change_password, "
            "u.password_changed_at, r.role_name FROM app_user u LEFT JOIN user_role r ON r.user_id = u.id "
            "WHERE u.username = :username")


def account(db: DbApi, username: str) -> tuple[Account, Principal]:
    """The account's sign-in state (active, locked, password dates) and the principal it makes."""
    rows = db.all(_ACCOUNT, {"username": username})
    if not rows:
        raise NotFound(f"There is no user '{username}'.", code="user_not_found")
    name, full_name, active, locked, must_change, changed_at, _ = rows[0]
    found = Account(name, full_name, bool(active), bool(locked), bool(must_change), db.read_time(changed_at))  # type: ignore[arg-type]
    return found, Principal(name, full_name, frozenset(r[6] for r in rows if r[6]))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def require_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise ValidationFailed("This change needs a reason.", errors={"reason": "required"},
                               code="reason_required")
    return reason.strip()


def _state(user: User) -> dict[str, object]:
    """What the trail shows of an account (never a password or its hash)."""
    return {"active": user.active, "locked": user.locked, "failed_attempts": user.failed_attempts,
            "must_change_password": user.must_change_password, "roles": sorted(user.role_names)}


# -- passwords ------------------------------------------------------------------------------------------
def _verified_user(session: Session, clock: Clock, username: str, password: str, where: str, lock_at: int, *,
                   lock: bool = False) -> User:
    """The usable user with this password; a wrong password is counted toward lockout (``where``; the
    account locks at ``lock_at`` failed attempts).

    One message for an unknown user and a wrong password, so usernames cannot be probed.
    """
    query = select(User).where(User.username == username)
    user = session.scalar(query.with_for_update() if lock else query)
    if user is None:
        _matches(_dummy_hash(), password)  # as long as a known user's check: timing tells no usernames
        raise AuthenticationFailed("Unknown username or wrong password.", code="invalid_credentials")
    _check_usable(user)
    if not check_password(user, password):
        register_failure(session, clock, user, where, lock_at)
        raise AuthenticationFailed("Unknown username or wrong password.", code="invalid_credentials")
    return user


def _dummy_hash() -> str:
    """A hash of a random password made with the current hasher's parameters (tests swap the hasher)."""
    key = id(_hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hashes[key]


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_policy(session: Session, username: str, password: str, user: User | None = None) -> None:
    """Raise ValidationFailed (``password_too_short``, ``password_is_username``, ``password_reused``)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"A password has at least {MIN_PASSWORD_LENGTH} characters.",
                               errors={"password": "too short"}, code="password_too_short")
    if password.casefold() == username.casefold():
        raise ValidationFailed("A password must not be the username.",
                               errors={"password": "equals the username"}, code="password_is_username")
    if user is not None:
        recent = list(session.scalars(select(PasswordHistory.password_hash).where(
            PasswordHistory.user_id == user.id).order_by(PasswordHistory.id.desc()).limit(PASSWORD_HISTORY)))
        if user.password_hash not in recent:  # an account older than the history table
            recent = [user.password_hash, *recent[:PASSWORD_HISTORY - 1]]
        if any(_matches(h, password) for h in recent):
            raise ValidationFailed(f"A password must differ from the last {PASSWORD_HISTORY} passwords.",
                                   errors={"password": "used before"}, code="password_reused")


def _set_password(session: Session, user: User, password: str, clock: Clock, *, one_time: bool) -> None:
    now = clock.now()
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = now
    user.must_change_password = one_time
    integrity.seal_user(integrity.key_of(session), user)
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash, set_at=now))


def password_expired(user: User | Account, clock: Clock) -> bool:
    return clock.now() - user.password_changed_at >= timedelta(days=PASSWORD_MAX_AGE_DAYS)


def password_change_due(user: User | Account, clock: Clock) -> bool:
    """True when the user must choose a new password first (one-time password, or too old)."""
    return user.must_change_password or password_expired(user, clock)


# -- users --------------------------------------------------------------------------------------------------
def add_user(session: Session, clock: Clock, actor: Actor, username: str, full_name: str, password: str,
             roles: list[str], *, one_time: bool = False) -> User:
    """A new user; ``one_time``: an admin chose the password, so the user must change it at first sign-in."""
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValidationFailed("A username is letters, digits, '.', '-' and '_'.",
                               errors={"username": "invalid characters"}, code="username_invalid")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"The username '{username}' exists or existed; usernames are never reused.",
                       code="username_taken")
    check_policy(session, username, password)
    unknown = set(roles) - role_names(session)
    if unknown:
        raise ValidationFailed(f"Unknown roles: {', '.join(sorted(unknown))}.", errors={"roles": "unknown"},
                               code="unknown_role")
    now = clock.now()
    key = integrity.key_of(session)
    user = User(username=username, full_name=full_name, password_hash=_hasher.hash(password),
                active=True, password_changed_at=now, created_at=now, must_change_password=one_time,
                roles=[UserRole(role_name=r, row_mac=key.grant_mac(username, r)) for r in sorted(set(roles))])
    integrity.seal_user(key, user)
    session.add(user)
    session.flush()
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash, set_at=now))
    audit.record(session, actor, "user.created", "user", username, full_name, at=now,
                 after={"username": username, "full_name": full_name, "roles": sorted(set(roles)),
                        "must_change_password": one_time})
    return user


def change_password(session: Session, clock: Clock, username: str, old: str, new: str, lock_at: int) -> User:
    """The user's own change; the old password proves who asks (a wrong one counts toward lockout).

    A locked or deactivated account is refused (AuthenticationFailed); a new password that breaks the
    policy raises ValidationFailed. The caller must commit even when this raises ``invalid_credentials``
    (the failure is recorded).
    """
    user = _verified_user(session, clock, username, old, "password_change", lock_at, lock=True)
    check_policy(session, username, new, user)
    was_one_time = user.must_change_password
    _set_password(session, user, new, clock, one_time=False)
    user.failed_attempts = 0
    audit.record(session, Actor(user.username, user.full_name), "user.password_changed", "user", username,
                 user.full_name, at=clock.now(), before={"must_change_password": was_one_time},
                 after={"must_change_password": False, "password_changed_at": clock.now()})
    return user


def reset_password(session: Session, clock: Clock, actor: Actor, username: str, reason: str | None) -> str:
    """An admin reset: returns a one-time password that must be changed before the user may log in or sign.

    The reset also clears a lockout and the failed-attempt count.
    """
    reason = require_reason(reason)
    user = get_user(session, username, lock=True)
    before = _state(user)
    one_time = secrets.token_urlsafe(12)
    _set_password(session, user, one_time, clock, one_time=True)
    user.locked, user.failed_attempts = False, 0
    audit.record(session, actor, "user.password_reset", "user", username, user.full_name, at=clock.now(),
                 before=before, after=_state(user), reason=reason)
    return one_time


def unlock_user(session: Session, clock: Clock, actor: Actor, username: str, reason: str | None) -> User:
    reason = require_reason(reason)
    user = get_user(session, username, lock=True)
    before = _state(user)
    user.locked, user.failed_attempts = False, 0
    audit.record(session, actor, "user.unlocked", "user", username, user.full_name, at=clock.now(),
                 before=before, after=_state(user), reason=reason)
    return user


def set_user_active(session: Session, clock: Clock, actor: Actor, username: str, active: bool,
                    reason: str | None) -> User:
    """Deactivate (the user can no longer log in or sign; the username stays taken) or activate again."""
    reason = require_reason(reason)
    user = get_user(session, username, lock=True)
    if user.active == active:
        return user
    if not active:
        _keep_admin(session, actor, user, "deactivate yourself")
    before = _state(user)
    user.active = active
    integrity.seal_user(integrity.key_of(session), user)
    audit.record(session, actor, "user.activated" if active else "user.deactivated", "user", username,
                 user.full_name, at=clock.now(), before=before, after=_state(user), reason=reason)
    return user


def _keep_admin(session: Session, actor: Actor, user: User, what: str) -> None:
    """Refuse a change that would leave gmpflow without an administrator, or that an admin makes to himself:
    403 ``not_permitted`` for oneself, 409 ``last_admin`` for the last active admin."""
    if actor.id == user.username:
        raise PermissionDenied(f"You cannot {what}; another administrator must do it.", code="not_permitted")
    if not user.active or ADMIN_ROLE not in user.role_names:
        return
    # the other admins' rows locked: two admins deactivating each other at once cannot both succeed
    others = session.scalars(select(User.id).join(UserRole).where(
        UserRole.role_name == ADMIN_ROLE, User.active.is_(True), User.id != user.id).with_for_update(of=User))
    if not list(others):
        raise Conflict(f"'{user.username}' is the last active administrator; grant the admin role to someone "
                       "else first.", code="last_admin")


def grant_role(session: Session, clock: Clock, actor: Actor, username: str, role: str,
               reason: str | None) -> User:
    reason = require_reason(reason)
    if role not in role_names(session):
        raise ValidationFailed(f"Unknown role '{role}'.", errors={"role": "unknown"}, code="unknown_role")
    user = get_user(session, username, lock=True)
    if role in user.role_names:
        return user
    before = sorted(user.role_names)
    user.roles.append(UserRole(role_name=role, row_mac=integrity.key_of(session).grant_mac(username, role)))
    audit.record(session, actor, "user.role_granted", "user", username, user.full_name, at=clock.now(),
                 before={"roles": before}, after={"roles": sorted(user.role_names), "granted": role},
                 reason=reason)
    return user


def remove_role(session: Session, clock: Clock, actor: Actor, username: str, role: str,
                reason: str | None) -> User:
    reason = require_reason(reason)
    user = get_user(session, username, lock=True)
    held = [r for r in user.roles if r.role_name == role]
    if not held:
        return user
    if role == ADMIN_ROLE:
        _keep_admin(session, actor, user, "remove your own admin role")
    before = sorted(user.role_names)
    user.roles.remove(held[0])
    audit.record(session, actor, "user.role_removed", "user", username, user.full_name, at=clock.now(),
                 before={"roles": before}, after={"roles": sorted(user.role_names), "removed": role},
                 reason=reason)
    return user


# -- authentication ---------------------------------------------------------------------------------------
def _check_usable(user: User) -> None:
    if not user.active:
        raise AuthenticationFailed("This account is deactivated.", code="account_inactive")
    if user.locked:
        raise AuthenticationFailed("This account is locked after too many failed attempts; an administrator "
                                   "must unlock it.", code="account_locked")


def authenticate(session: Session, clock: Clock, username: str, password: str, lock_at: int) -> Principal:
    """Check username and password; counts failures and locks the account after too many.

    Raises AuthenticationFailed with one message for unknown user and wrong password (no user enumeration);
    ``password_change_required`` when the password is right but a one-time or expired one (change it
    with ``change_password``). The failure is recorded, so the caller must commit even when this raises
    (see ``services``).
    """
    user = _verified_user(session, clock, username, password, "login", lock_at)
    if user.failed_attempts:
        user.failed_attempts = 0
    if password_change_due(user, clock):
        raise PasswordChangeRequired("The password must be changed first (it is a one-time password or older "
                                     f"than {PASSWORD_MAX_AGE_DAYS} days).")
    return Principal.of(user)


def register_failure(session: Session, clock: Clock, user: User, where: str, lock_at: int,
                     detail: str | None = None) -> None:
    """Count a failed attempt (``where``: login, signing, password_change); lock at ``lock_at`` attempts.

    Both the attempt and a resulting lock are audit events (the lock is what alerts the admins), at the
    clock's now (a request's ``RequestContext.clock``: its time).
    """
    user.failed_attempts += 1
    now = clock.now()
    after: dict[str, object] = {"failed_attempts": user.failed_attempts}
    if detail:
        after["why"] = detail
    audit.record(session, Actor(user.username, user.full_name), f"user.{where}_failed", "user", user.username,
                 user.full_name, at=now, after=after)
    if user.failed_attempts >= lock_at and not user.locked:
        user.locked = True
        audit.record(session, Actor.system(), "user.locked", "user", user.username, user.full_name, at=now,
                     after={"locked": True}, reason=f"{user.failed_attempts} failed attempts")
