"""The engine's ``RequestContext`` (``engine.request_context``) of the current HTTP request: made once, on the
first action that needs it, from the signed-in principal (page or API), the engine's clock and the client's
``X-Request-Id``; kept on ``flask.g`` for the rest of the request."""

from __future__ import annotations

from flask import current_app, g, request

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
