"""Bearer tokens: signed (itsdangerous), carrying the username, valid for ``TOKEN_MAX_AGE_SECONDS``.

The principal is re-read from the engine on every request, so a deactivated or locked account's
token stops working at once. Time comes from the engine's clock (tests move it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from engine.errors import AuthenticationFailed, NotFound, PermissionDenied
from engine.identity import Principal
from engine.services import Gmpflow

SALT = "gmpflow-api-token"
F = TypeVar("F", bound=Callable[..., Any])


def engine() -> Gmpflow:
    return current_app.extensions["gmpflow"]  # type: ignore[no-any-return]


def _serializer() -> URLSafeTimedSerializer:
    clock = engine().clock

    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now().timestamp())

    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=SALT, signer=ClockSigner)


def issue_token(principal: Principal) -> tuple[str, datetime]:
    """A token for the principal and the moment it expires."""
    max_age = int(current_app.config["TOKEN_MAX_AGE_SECONDS"])
    token = _serializer().dumps({"u": principal.username})
    return token, engine().clock.now().replace(microsecond=0) + timedelta(seconds=max_age)


def authenticate_request() -> Principal:
    """The principal named by the request's bearer token; raises AuthenticationFailed (401)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("This request needs 'Authorization: Bearer <token>'; get a token from "
                                   "POST /api/v1/tokens.", code="unauthenticated")
    try:
        claims = _serializer().loads(token.strip(), max_age=int(current_app.config["TOKEN_MAX_AGE_SECONDS"]))
    except SignatureExpired:
        raise AuthenticationFailed("The token has expired; request a new one.",
                                   code="token_expired") from None
    except BadSignature:
        raise AuthenticationFailed("The token is not valid.", code="token_invalid") from None
    username = claims.get("u") if isinstance(claims, dict) else None
    if not isinstance(username, str):
        raise AuthenticationFailed("The token is not valid.", code="token_invalid")
    try:
        return engine().principal(username)
    except NotFound:
        raise AuthenticationFailed("The token is not valid.", code="token_invalid") from None


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
