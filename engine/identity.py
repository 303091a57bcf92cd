"""Users and roles: unique usernames never reused, argon2 passwords, lockout after failed attempts.

Roles are what BPMN lanes name. Every change to a user or a role grant is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import Actor
from engine.clock import Clock
from engine.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from engine.store.models import Role, User, UserRole

DEFAULT_ROLES = {
    "operator": "Performs SOP steps on the shop floor",
    "supervisor": "Supervises production; releases orders; assesses deviations",
    "planner": "Plans production orders",
    "qa": "Quality assurance: reviews, approves, releases batches",
    "process_owner": "Edits process models",
    "data_steward": "Owns master data",
    "admin": "Administers gmpflow: users, instances, incidents",
}
MIN_PASSWORD_LENGTH = 8
MAX_FAILED_ATTEMPTS = 5
_hasher = PasswordHasher()


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


def ensure_default_roles(session: Session) -> None:
    existing = set(session.scalars(select(Role.name)))
    for name, description in DEFAULT_ROLES.items():
        if name not in existing:
            session.add(Role(name=name, description=description))


def role_names(session: Session) -> set[str]:
    return set(session.scalars(select(Role.name)))


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"There is no user '{username}'.", code="user_not_found")
    return user


def add_user(session: Session, clock: Clock, actor: Actor, username: str, full_name: str, password: str,
             roles: list[str]) -> User:
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValidationFailed("A username is letters, digits, '.', '-' and '_'.",
                               errors={"username": "invalid characters"}, code="username_invalid")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"The username '{username}' exists or existed; usernames are never reused.",
                       code="username_taken")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"A password has at least {MIN_PASSWORD_LENGTH} characters.",
                               errors={"password": "too short"}, code="password_too_short")
    unknown = set(roles) - role_names(session)
    if unknown:
        raise ValidationFailed(f"Unknown roles: {', '.join(sorted(unknown))}.", errors={"roles": "unknown"},
                               code="unknown_role")
    now = clock.now()
    user = User(username=username, full_name=full_name, password_hash=_hasher.hash(password),
                password_changed_at=now, created_at=now, roles=[UserRole(role_name=r) for r in sorted(set(roles))])
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", username, full_name, at=now,
                 after={"username": username, "full_name": full_name, "roles": sorted(set(roles))})
    return user


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, clock: Clock, username: str, password: str) -> Principal:
    """Check username and password; counts failures and locks the account after too many.

    Raises AuthenticationFailed with one message for unknown user and wrong password (no user enumeration);
    the failure is recorded, so the caller must commit even when this raises (see ``services``).
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AuthenticationFailed("Unknown username or wrong password.", code="invalid_credentials")
    if not user.active:
        raise AuthenticationFailed("This account is deactivated.", code="account_inactive")
    if user.locked:
        raise AuthenticationFailed("This account is locked after too many failed attempts; an administrator "
                                   "must unlock it.", code="account_locked")
    if not check_password(user, password):
        register_failure(session, clock, user, "login")
        raise AuthenticationFailed("Unknown username or wrong password.", code="invalid_credentials")
    if user.failed_attempts:
        user.failed_attempts = 0
    return Principal.of(user)


def register_failure(session: Session, clock: Clock, user: User, where: str) -> None:
    user.failed_attempts += 1
    now = clock.now()
    audit.record(session, Actor(user.username, user.full_name), f"user.{where}_failed", "user", user.username,
                 user.full_name, at=now, after={"failed_attempts": user.failed_attempts})
    if user.failed_attempts >= MAX_FAILED_ATTEMPTS and not user.locked:
        user.locked = True
        audit.record(session, Actor.system(), "user.locked", "user", user.username, user.full_name, at=now,
                     after={"locked": True}, reason=f"{user.failed_attempts} failed attempts")
