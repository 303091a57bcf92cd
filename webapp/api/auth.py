"""Bearer tokens: random credentials kept on the server (``engine.sessions``), valid for
``GMPFLOW_TOKEN_HOURS`` (default 8), ended at a password change or reset.

The principal is re-read with the token on every request (one statement, no argon2), so a deactivated or
locked account's token stops working at once. Time comes from the engine's clock (tests move it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from engine.errors import AuthenticationFailed, PermissionDenied
from engine.identity import Principal
from engine.services import Gmpflow
from webapp.request_context import claimed_request_context

F = TypeVar("F", bound=Callable[..., Any])


def engine() -> Gmpflow:
    return current_app.extensions["gmpflow"]  # type: ignore[no-any-return]


def installation_key() -> str:
    """The key tokens and browser sessions are bound to: a token of another installation is refused."""
    return str(current_app.config["SECRET_KEY"])


def issue_token(username: str, password: str) -> tuple[str, datetime]:
    """A token for the user and the moment it expires (AuthenticationFailed, PasswordChangeRequired)."""
    _, token, expires_at = engine().sign_in(claimed_request_context(username), password, installation_key())
    return token, expires_at


def authenticate_request() -> Principal:
    """The principal named by the request's bearer token; raises AuthenticationFailed (401)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("This request needs 'Authorization: Bearer <token>'; get a token from "
                                   "POST /api/v1/tokens.", code="unauthenticated")
    return engine().principal_for(token.strip(), installation_key())


def principal() -> Principal:
    return g.principal  # type: ignore[no-any-return]


def require_roles(*roles: str) -> Callable[[F], F]:
    """Only principals holding one of ``roles`` may call the view (403 ``role_required`` otherwise)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not principal().roles & set(roles):
                raise PermissionDenied(f"This needs the role {' or '.join(roles)}.", code="role_required")
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
