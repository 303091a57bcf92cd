"""The one place where errors become HTTP answers: ``application/problem+json`` (RFC 9457).

Every problem has ``type``, ``title``, ``status``, ``detail`` and a stable ``code``; validation
problems add ``errors`` (field name → message). Status by engine error class:

=====================================  ======
NotFound                               404
Conflict                               409
PermissionDenied                       403
SignatureRejected                      403 (every ``signature_*`` code, a wrong signing password
                                           included: the bearer token is still valid, so 401 would
                                           wrongly tell the client to log in again)
PasswordChangeRequired                 403 (``password_change_required``: the password is right but must
                                           be changed first)
AuthenticationFailed                   401
UndeclaredField                        422 (``undeclared_field``: a key the client may not set)
EntryRefused                           422 (well-formed data the rules refuse, e.g. a lot; ``code`` says why)
ValidationFailed, DefinitionError      400
ScriptFailed                           422 (the model's own script, condition or DMN failed on this
                                           request's data, or a sandbox limit stopped it; nothing stored)
any other error                        500 (``internal_error``, nothing of the cause leaked)
=====================================  ======

The database unreachable (SQLAlchemy ``OperationalError`` or ``InterfaceError``: the SQLite file gone or
unreadable, the PostgreSQL server refusing or a connection dropped) is a 503 ``database_unavailable`` with
``Retry-After``; the request changed nothing, and the same request succeeds once the database is back.
Other database errors (an integrity error is a bug, not an outage) stay 500.

A browser navigating to a page (``Accept`` prefers ``text/html``, outside ``/api/``) gets the same status
as a readable page instead of JSON; scripts and API clients keep the problem document.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, render_template, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from engine.errors import (
    AuthenticationFailed,
    Conflict,
    DefinitionError,
    EntryRefused,
    GmpflowError,
    NotFound,
    PasswordChangeRequired,
    PermissionDenied,
    ScriptFailed,
    SignatureRejected,
    UndeclaredField,
    ValidationFailed,
)

log = logging.getLogger("gmpflow.webapp")
PROBLEM_MEDIA_TYPE = "application/problem+json"
STATUS_BY_ERROR: tuple[tuple[type[GmpflowError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (PermissionDenied, 403),
    (SignatureRejected, 403),
    (PasswordChangeRequired, 403),
    (AuthenticationFailed, 401),
    (UndeclaredField, 422),
    (EntryRefused, 422),
    (ValidationFailed, 400),
    (DefinitionError, 400),
    (ScriptFailed, 422),
)
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
              415: "unsupported_media_type"}


def status_of(error: GmpflowError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def problem(status: int, code: str, detail: str, *, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": f"https://gmpflow.dev/problems/{code.replace('_', '-')}",
                            "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
                            "code": code}
    if errors:
        body["errors"] = {str(k): str(v) for k, v in errors.items()}
    body.update(extra)
    response = _page(body) if _wants_page() else None
    if response is None:
        response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def _wants_page() -> bool:
    if request.path.startswith("/api/"):
        return False
    return (request.accept_mimetypes.best_match([PROBLEM_MEDIA_TYPE, "application/json", "text/html"])
            == "text/html")


def _page(body: dict[str, Any]) -> Response | None:
    """The problem as the site's error page; None when even that cannot be drawn (the JSON is sent then)."""
    try:
        html = render_template("error.html", title=body["title"], status=body["status"],
                               message=body["detail"], code=body["code"], errors=body.get("errors"))
    except Exception:  # an error page must never raise: the caller falls back to the problem document
        log.exception("the error page could not be drawn")
        return None
    return Response(html, status=body["status"], mimetype="text/html")


def _engine_error(error: GmpflowError) -> Response:
    status = status_of(error)
    if status == 500:
        log.error("unmapped engine error %s", error.code, exc_info=error)
        return problem(500, "internal_error", "The server failed to handle the request.")
    errors = getattr(error, "errors", None) or None
    headers = {"WWW-Authenticate": 'Bearer realm="gmpflow"'} if status == 401 else None
    problems = error.context.get("problems") if isinstance(error, DefinitionError) else None
    extra = {"problems": problems} if problems else {}
    if isinstance(error, UndeclaredField):
        extra["fields"] = error.fields
    return problem(status, error.code, error.message, errors=errors, headers=headers, **extra)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    allow = dict(error.get_headers()).get("Allow")
    headers = {"Allow": allow} if allow else None
    code = HTTP_CODES.get(status, "http_error")
    return problem(status, code, error.description or HTTPStatus(status).phrase, headers=headers)


def _database_unavailable(error: Exception) -> Response:
    log.error("database unavailable: %s", str(error).splitlines()[0] if str(error) else type(error).__name__)
    return problem(503, "database_unavailable", "The database is not reachable at the moment; nothing was "
                   "changed. Try again shortly.", headers={"Retry-After": "5"})


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem(500, "internal_error", "The server failed to handle the request.")


def register(app: Flask) -> None:
    app.register_error_handler(GmpflowError, _engine_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(InterfaceError, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
