"""Credentials a signed-in user holds: API bearer tokens and browser sessions, one ``auth_session`` row each.

A credential is ``<row id>.<random secret>``; the store keeps only an HMAC-SHA-256 of the secret under the
installation's secret key (the caller's ``key``), so a copy of the database hands out no working token and
a credential of another installation is refused. Checking one is a lookup by id and a constant-time compare
of the digests: no argon2 per request. A credential ends when it expires (``Config.token_hours``, default 8),
at logout (that one), and when its user's password is changed or reset (all of them): the server refuses it
from then on, whatever the client still holds (21 CFR 11.10(d), 11.300).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import AuthenticationFailed
from engine.identity import Account, Principal
from engine.store.dbapi import DbApi
from engine.store.models import AuthSession

API, BROWSER = "api", "browser"

# the credential, its user's account and roles in one statement on the DB-API (every API request runs it)
_RESOLVE = ("SELECT s.secret_sha256, s.kind, s.expires_at, s.revoked_at, u.username, u.full_name, u.active, "
            "u.locked, u.must_change_password, u.password_changed_at, r.role_name FROM auth_session s "
            "JOIN app_user u ON u.id = s.user_id LEFT JOIN user_role r ON r.user_id = u.id WHERE s.id = :id")


def _digest(key: str, secret: str) -> str:
    return hmac.new(key.encode("utf-8"), secret.encode("utf-8"), hashlib.sha256).hexdigest()


def issue(session: Session, clock: Clock, key: str, user_id: int, kind: str, hours: float
          ) -> tuple[str, datetime]:
    """A new credential of ``kind`` for the user, living ``hours`` at most, and the moment it expires."""
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    expires = now.replace(microsecond=0) + timedelta(hours=hours)
    row = AuthSession(user_id=user_id, kind=kind, secret_sha256=_digest(key, secret), issued_at=now,
                      expires_at=expires)
    session.add(row)
    session.flush()
    return f"{row.id}.{secret}", expires


def _split(credential: str) -> tuple[int, str] | None:
    row_id, _, secret = credential.partition(".")
    if not row_id.isdigit() or len(row_id) > 18 or not secret or len(secret) > 200:
        return None
    return int(row_id), secret


def resolve(db: DbApi, clock: Clock, key: str, credential: str, kind: str) -> tuple[Account, Principal]:
    """The account and principal a live credential names; raises AuthenticationFailed ``token_invalid`` (not
    ours, forged, of another kind), ``token_revoked`` (logout, password change or reset) or ``token_expired``.
    The caller checks the account (active, locked, password change due)."""
    parts = _split(credential)
    rows = db.all(_RESOLVE, {"id": parts[0]}) if parts else []
    genuine = bool(parts and rows) and hmac.compare_digest(rows[0][0], _digest(key, parts[1]))  # type: ignore[index]
    if not genuine or rows[0][1] != kind:
        raise AuthenticationFailed("The token is not valid.", code="token_invalid")
    _, _, expires_at, revoked_at, name, full_name, active, locked, must_change, changed_at, _ = rows[0]
    if revoked_at is not None:
        raise AuthenticationFailed("This sign-in has ended (signed out, or the password was changed or "
                                   "reset); sign in again.", code="token_revoked")
    if clock.now() >= db.read_time(expires_at):  # type: ignore[operator]
        raise AuthenticationFailed("The token has expired; request a new one.", code="token_expired")
    account = Account(name, full_name, bool(active), bool(locked), bool(must_change),
                      db.read_time(changed_at))  # type: ignore[arg-type]
    return account, Principal(name, full_name, frozenset(r[10] for r in rows if r[10]))


def revoke(session: Session, clock: Clock, key: str, credential: str) -> None:
    """End one credential (logout); an unknown or forged one changes nothing."""
    parts = _split(credential)
    row = session.get(AuthSession, parts[0]) if parts else None
    if parts and row is not None and hmac.compare_digest(row.secret_sha256, _digest(key, parts[1])):
        row.revoked_at = row.revoked_at or clock.now()


def revoke_all(session: Session, clock: Clock, user_id: int) -> int:
    """End every live credential of the user (password change or reset); how many there were."""
    result = session.execute(update(AuthSession).where(AuthSession.user_id == user_id,
                                                       AuthSession.revoked_at.is_(None))
                             .values(revoked_at=clock.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
