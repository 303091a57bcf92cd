"""Users, roles, passwords, sign-in and the credentials of the API and the browser."""

from __future__ import annotations

import secrets
from datetime import datetime

from engine import identity, sessions
from engine.application.base import EngineCore
from engine.errors import AuthenticationFailed, PasswordChangeRequired
from engine.identity import Principal
from engine.request_context import Caller, RequestContext, as_request
from engine.store.models import Role, Setting, User


class UserServices(EngineCore):
    """Identity: accounts, roles, passwords, sign-in and credentials. An admin's action is audited as the
    caller's request, at its time; its ``reason`` is the one given, else the request's."""

    def add_user(self, caller: Caller, username: str, full_name: str, password: str, roles: list[str], *,
                 one_time: bool = False) -> User:
        """``one_time``: the password is chosen by an admin and must be changed at first sign-in."""
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return identity.add_user(session, context.clock, context.actor, username, full_name, password,
                                     roles, one_time=one_time)

    def add_role(self, caller: Caller, name: str, description: str, reason: str | None = None) -> Role:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return identity.add_role(session, context.clock, context.actor, name, description,
                                     context.why(reason))

    def list_roles(self) -> list[Role]:
        with self.db.read() as session:
            return identity.list_roles(session)

    def list_users(self) -> list[User]:
        """Every user ever created (usernames are never reused), with lock state and failed attempts."""
        with self.db.read() as session:
            return identity.list_users(session)

    def change_password(self, claimant: str | RequestContext, old: str, new: str) -> None:
        """The user's own change (also the way out of a one-time or expired password). ``claimant`` is the
        username, or the request of whoever claims it (``RequestContext.claimed``): the old password proves
        who asks; the change (or the failure) happens at the request's time.

        A wrong old password is recorded and counts toward lockout before AuthenticationFailed is raised.
        """
        context = self._claimed(claimant)
        failure: AuthenticationFailed | None = None
        with self.db.unit_of_work(context.correlation_id) as session:
            try:
                user = identity.change_password(session, context.clock, context.actor.id, old, new,
                                                self.config.lockout_attempts)
                # a stolen token dies with the old password
                sessions.revoke_all(session, context.clock, user.id)
                return
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def reset_password(self, caller: Caller, username: str, reason: str | None = None) -> str:
        """Admin reset; returns the one-time password (to hand over), which must be changed before signing."""
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            one_time = identity.reset_password(session, context.clock, context.actor, username,
                                               context.why(reason))
            sessions.revoke_all(session, context.clock, identity.get_user(session, username).id)
            return one_time

    def unlock_user(self, caller: Caller, username: str, reason: str | None = None) -> User:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return identity.unlock_user(session, context.clock, context.actor, username, context.why(reason))

    def set_user_active(self, caller: Caller, username: str, active: bool, reason: str | None = None) -> User:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return identity.set_user_active(session, context.clock, context.actor, username, active,
                                            context.why(reason))

    def grant_role(self, caller: Caller, username: str, role: str, reason: str | None = None) -> User:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return identity.grant_role(session, context.clock, context.actor, username, role,
                                       context.why(reason))

    def remove_role(self, caller: Caller, username: str, role: str, reason: str | None = None) -> User:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return identity.remove_role(session, context.clock, context.actor, username, role,
                                        context.why(reason))

    def authenticate(self, username: str, password: str) -> Principal:
        """Check a login; a failure is recorded (and counts toward lockout) before it is raised."""
        failure: AuthenticationFailed | None = None
        with self.db.unit_of_work() as session:
            try:
                return identity.authenticate(session, self.clock, username, password,
                                             self.config.lockout_attempts)
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def sign_in(self, claimant: str | RequestContext, password: str, key: str, kind: str = sessions.API
                ) -> tuple[Principal, str, datetime]:
        """Check a login (as ``authenticate``) and issue a credential of ``kind`` (an API token or a browser
        session) bound to the installation's secret ``key``: the principal, the credential, its expiry.
        ``claimant``: the username, or the request of whoever claims it (``RequestContext.claimed``); the
        credential is issued, and a failure or a lockout recorded, at the request's time with its id."""
        context = self._claimed(claimant)
        failure: AuthenticationFailed | None = None
        with self.db.unit_of_work(context.correlation_id) as session:
            try:
                found = identity.authenticate(session, context.clock, context.actor.id, password,
                                              self.config.lockout_attempts)
                user_id = identity.get_user(session, context.actor.id).id
                credential, expires = sessions.issue(session, context.clock, key, user_id, kind,
                                                     self.config.token_hours)
                return found, credential, expires
            except AuthenticationFailed as exc:
                failure = exc
        raise failure

    def sign_out(self, claimant: str | RequestContext, credential: str, key: str) -> None:
        """End one token or browser session on the server (logout), at the time of the request of whoever
        holds it (``claimant``: a username or ``RequestContext.claimed``; the credential, not the claim,
        says which session ends); an unknown credential changes nothing."""
        context = self._claimed(claimant)
        with self.db.unit_of_work(context.correlation_id) as session:
            sessions.revoke(session, context.clock, key, credential)

    def _claimed(self, claimant: str | RequestContext) -> RequestContext:
        """The request of a caller without a session (a username: a request of its own made now)."""
        return (claimant if isinstance(claimant, RequestContext)
                else RequestContext.claimed(claimant, self.clock.now()))

    def principal_for(self, credential: str, key: str, kind: str = sessions.API) -> Principal:
        """The principal of a live credential (one statement, no argon2); raises AuthenticationFailed
        (``token_invalid``, ``token_revoked``, ``token_expired``, ``account_inactive``) or
        PasswordChangeRequired."""
        with self.db.query() as db:
            user, principal = sessions.resolve(db, self.clock, key, credential, kind)
        return self._usable(user, principal)

    def secret(self, name: str) -> str:
        """A random installation secret (e.g. ``secret_key`` for signing API tokens) kept in ``setting``.

        Created on first use; later calls, from any process, return the stored value.
        """
        with self.db.unit_of_work() as session:
            row = session.get(Setting, name)
            if row is None:
                row = Setting(key=name, value=secrets.token_urlsafe(48))
                session.add(row)
            return row.value

    def principal(self, username: str) -> Principal:
        with self.db.query() as db:
            user, principal = identity.account(db, username)
        return self._usable(user, principal)

    def _usable(self, user: identity.Account, principal: Principal) -> Principal:
        if not user.active or user.locked:
            raise AuthenticationFailed("This account can no longer sign in.", code="account_inactive")
        # e.g. the password grew too old since the token was issued
        if identity.password_change_due(user, self.clock):
            raise PasswordChangeRequired("The password must be changed first.")
        return principal
