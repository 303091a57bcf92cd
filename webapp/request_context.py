"""The engine's ``RequestContext`` (``engine.request_context``) of the current HTTP request: made once, on the
first action that needs it, from the signed-in principal (page or API), the engine's clock and the client's
``X-Request-Id``; kept on ``flask.g`` for the rest of the request. A response to a request that made one
names it in ``X-Request-Id`` (the client's own id when it was sane, else the new one), so a client can find
the request again: it is the ``correlation_id`` the request's audit events carry."""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from engine.request_context import RequestContext


def request_context(reason: str | None = None) -> RequestContext:
    """This request's context, for an action whose reason is ``reason``. Only for views that run for a
    signed-in user (``g.principal``)."""
    made = g.get("request_context")
    if made is None:
        made = g.request_context = RequestContext.of(
            g.principal, current_app.extensions["gmpflow"].clock.now(),
            correlation_id=request.headers.get("X-Request-Id"))
    return made.because(reason)


def claimed_request_context(username: str) -> RequestContext:
    """This request's context for a view open without a session, acting for whoever claims ``username`` (a
    password change: the service proves the claim)."""
    made = g.request_context = RequestContext.claimed(
        username, current_app.extensions["gmpflow"].clock.now(),
        correlation_id=request.headers.get("X-Request-Id"))
    return made


def init_app(app: Flask) -> None:
    app.after_request(_name_the_request)


def _name_the_request(response: Response) -> Response:
    made = g.get("request_context")
    if made is not None and made.correlation_id is not None:
        response.headers["X-Request-Id"] = made.correlation_id
    return response
