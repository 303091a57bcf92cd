"""Who may see a page: the browser session, its idle timeout, role checks, CSRF and security headers.

Every page declares who may open it with one decorator: ``@public`` (the login page), ``@signed_in``
(any signed-in user) or ``@roles("admin", ...)``. A page that declares nothing is refused to everyone
(default deny); ``tests/web/test_routes.py`` walks every route with every role.

The session cookie holds the username, the server-side session's credential (``engine.sessions``: ended
at logout, a password change or reset, and after ``GMPFLOW_TOKEN_HOURS``) and the time of the last
request. The principal is read with the credential on every request, so a deactivated or locked account,
or a replayed cookie of an ended session, is signed out at once. Time comes
from the engine's clock (tests move it).

A page's own background fetches (``static/js/page.js``: its poll of ``/changes`` and the refresh of its live
parts, marked with ``LIVE_HEADER``) are not the user's activity: they do not renew the idle time, so a page
left open still times out, and then they answer 401, on which the page reloads into the sign-in. Short of
ending the session they do not write its cookie, nor take its flash messages: the cookie they read may be
older than one a page load wrote meanwhile, and writing it back showed a message twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

from engine.config import Config
from engine.errors import AuthenticationFailed, NotFound
from engine.identity import Principal
from engine.services import Gmpflow
from engine.sessions import BROWSER

F = TypeVar("F", bound=Callable[..., Any])
LIVE_HEADER = "X-Gmpflow-Live"  # page.js sends it (value 1) on the fetches the page makes by itself
csrf = CSRFProtect()
PUBLIC = "public"
SIGNED_IN = "signed_in"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


ENDED = {"account_inactive": "Your account is locked (too many failed attempts) or deactivated; ask an "
                             "administrator.",
         "password_change_required": "Your password must be changed; sign in again to change it.",
         "token_expired": "Your session has expired; sign in again."}


def session_defaults(config: Config) -> dict[str, Any]:
    """Session settings from the installation's ``config``; ``GMPFLOW_SESSION_COOKIE_SECURE=0`` for plain-HTTP
    development only."""
    return {"SESSION_COOKIE_SECURE": config.session_cookie_secure,
            "SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_NAME": "gmpflow_session",
            "SESSION_IDLE_MINUTES": config.session_idle_minutes,
            "WTF_CSRF_TIME_LIMIT": None}  # the form token lives as long as the session


def engine() -> Gmpflow:
    return current_app.extensions["gmpflow"]  # type: ignore[no-any-return]


def principal() -> Principal:
    """The signed-in user (pages only run for one, see ``_guard``)."""
    return g.principal  # type: ignore[no-any-return]


def _declare(access: str | frozenset[str]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        view.web_access = access  # type: ignore[attr-defined]
        return view

    return decorate


public = _declare(PUBLIC)
signed_in = _declare(SIGNED_IN)


def roles(*names: str) -> Callable[[F], F]:
    """Only holders of one of ``names`` may open the page."""
    return _declare(frozenset(names))


def access_of(app: Flask, endpoint: str) -> str | frozenset[str] | None:
    """What a page declared (None: nothing, so nobody may open it)."""
    return getattr(app.view_functions.get(endpoint), "web_access", None)


def safe_next(target: str | None) -> str:
    """A local path to go back to after login; anything else (another host, a scheme) is the inbox."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return url_for("inbox.inbox")
    return target


def _now() -> float:
    return engine().clock.now().timestamp()


def background() -> bool:
    """Whether this request is a page's own background fetch, not the user's (the module's docstring)."""
    return request.headers.get(LIVE_HEADER) == "1"


def _load_principal() -> Principal | None:
    username = session.get("user")
    if not username:
        return None
    idle_limit = float(current_app.config["SESSION_IDLE_MINUTES"]) * 60
    if _now() - float(session.get("seen", 0)) > idle_limit:
        session.clear()
        flash(f"You were signed out after {current_app.config['SESSION_IDLE_MINUTES']:g} minutes without "
              "activity. Sign in again to go on.", "info")
        return None
    credential = session.get("sid")
    try:
        if not isinstance(credential, str):
            raise AuthenticationFailed("A session from before server-side sessions.", code="token_invalid")
        found = engine().principal_for(credential, str(current_app.config["SECRET_KEY"]), BROWSER)
        if found.username != username:
            raise AuthenticationFailed("The session names another user.", code="token_invalid")
    except (AuthenticationFailed, NotFound) as exc:
        session.clear()
        flash(ENDED.get(exc.code, "Your session has ended; sign in again."), "error")
        return None
    if not background():
        session["seen"] = _now()
    return found


def _guard() -> Any:
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.startswith("api."):
        return None
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return None  # 404/405: the error handler answers
    access = access_of(current_app, endpoint)
    g.principal = _load_principal()
    if access == PUBLIC:
        return None
    if g.principal is None:
        if background():
            return "Signed out: reload the page.", 401  # page.js reloads; the page load signs in again
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if access == SIGNED_IN:
        return None
    if isinstance(access, frozenset) and g.principal.roles & access:
        return None
    return forbidden()


def forbidden(message: str | None = None) -> tuple[str, int]:
    return render_template("error.html", title="Not allowed", status=403,
                           message=message or "Your roles do not allow this page."), 403


SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"))


def _headers(response: Response) -> Response:
    """The security headers a view did not set itself (one pass over the headers: ``setdefault`` scans them
    once per name, on every response)."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if response.mimetype == "text/html" and "cache-control" not in present:
        headers.add("Cache-Control", "no-store")
    return response


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    return render_template("error.html", title="Form expired", status=400,
                           message="The form was too old or not sent from this site. Go back, reload the "
                                   "page and try again."), 400


class _StoredKeySessions(SecureCookieSessionInterface):
    """Signed-cookie sessions that read the database-kept secret key when none is configured: the session
    opens before any ``before_request`` hook, so it cannot wait for ``create_app``'s own loader."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if not app.secret_key:
            app.config["SECRET_KEY"] = app.extensions["gmpflow"].secret("secret_key")
        if not request.cookies.get(self.get_cookie_name(app)):
            # what the parent answers without a cookie (every API call with a bearer token), without
            # building its signing serializer first: a few percent of such a request's CPU
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = _StoredKeySessions()
    app.before_request(_guard)  # before the CSRF check: a stranger learns 'sign in' or 'not allowed' first
    csrf.init_app(app)
    app.after_request(_headers)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.context_processor(lambda: {"me": g.get("principal"), "can": _can, "background": background()})


def _can(*names: str) -> bool:
    """Whether the signed-in user holds one of ``names`` (for showing links and buttons)."""
    me = g.get("principal")
    return bool(me and me.roles & set(names))
