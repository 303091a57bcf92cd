"""Rate limits (Flask-Limiter) on the routes that take a password without a session or token: the API's
``POST /tokens`` and ``POST /password``, the web login and password-change forms.

Account lockout (``GMPFLOW_LOCKOUT_ATTEMPTS``) stops guessing one account's password; this limit stops one
client from trying passwords across many accounts. Each of these routes allows
``GMPFLOW_PASSWORD_RATE_LIMIT`` (default ``100 per minute``) failed attempts (4xx answers) per client
address; the next answers 429 ``rate_limited`` with ``Retry-After`` until the window ends, whatever the
credentials. A success does not count, so a shift signing in at one terminal is not throttled. Counters
live in memory (one process) unless ``GMPFLOW_RATE_LIMIT_STORAGE_URI`` names a shared store (e.g.
``redis://host:6379``, for several gunicorn workers or hosts). Behind a reverse proxy, let the app see the
client's address (werkzeug's ``ProxyFix``), or every client shares the proxy's counter.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from engine.config import Config
from webapp.problems import problem

PASSWORD_ROUTES = ("api.issue", "api.change_password", "auth.login", "auth.change_password")


def settings(config: Config) -> dict[str, Any]:
    """The limit and the counters' store, from the installation's ``config`` (overridable in ``create_app``'s
    Flask config)."""
    return {"GMPFLOW_PASSWORD_RATE_LIMIT": config.password_rate_limit,
            "RATELIMIT_STORAGE_URI": config.rate_limit_storage_uri}


def init_app(app: Flask) -> Limiter:
    """One limiter per app (its own counters), wrapped around the password routes' POST."""
    hooks = _request_hooks(app)
    limiter = Limiter(get_remote_address, app=app)
    _confine_to_password_routes(app, hooks)
    refused = limiter.limit(app.config["GMPFLOW_PASSWORD_RATE_LIMIT"], methods=["POST"],
                            deduct_when=lambda response: 400 <= response.status_code < 500)
    for endpoint in PASSWORD_ROUTES:
        app.view_functions[endpoint] = cast(Any, refused(app.view_functions[endpoint]))
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.extensions["gmpflow.limiter"] = limiter
    return limiter


_HOOK_LISTS = ("before_request_funcs", "after_request_funcs", "teardown_request_funcs")


def _request_hooks(app: Flask) -> dict[str, list[Any]]:
    return {name: list(getattr(app, name).get(None, [])) for name in _HOOK_LISTS}


def _confine_to_password_routes(app: Flask, before: dict[str, list[Any]]) -> None:
    """The hooks the limiter added to every request run on the password routes only: no other route has a
    limit, and its checks, header injection and context reset cost every API request a tenth of its CPU."""
    for name in _HOOK_LISTS:
        hooks = getattr(app, name).get(None, [])
        hooks[:] = [hook if hook in before[name] else _on_password_routes(hook) for hook in hooks]


def _on_password_routes(hook: Any) -> Any:
    def gated(*args: Any) -> Any:
        if request.endpoint in PASSWORD_ROUTES:
            return hook(*args)
        return args[0] if args else None  # an after_request hook hands the response on

    return gated


def _too_many(error: RateLimitExceeded) -> Response:
    seconds = error.limit.limit.get_expiry()
    return problem(429, "rate_limited", f"Too many failed attempts from this address ({error.limit.limit}); "
                   f"try again in at most {seconds} seconds.", headers={"Retry-After": str(seconds)})
