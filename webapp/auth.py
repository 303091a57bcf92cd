"""Signing in and out of the browser session, and changing one's own password.

The session is kept on the server (``engine.sessions``): the cookie carries its credential, which logout, a
password change or an admin reset end for good.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from engine.errors import AuthenticationFailed, ValidationFailed
from engine.sessions import BROWSER
from webapp.guard import engine, public, safe_next, signed_in
from webapp.request_context import claimed_request_context

bp = Blueprint("auth", __name__)

LOGIN_MESSAGES = {
    "invalid_credentials": "Unknown username or wrong password. Too many failed attempts lock the account.",
    "account_locked": "This account is locked after too many failed attempts. "
                      "An administrator can unlock it.",
    "account_inactive": "This account is deactivated. Ask an administrator.",
    "password_change_required": "Your password is a one-time or expired password: choose a new one below.",
}


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    try:
        found, credential, _ = engine().sign_in(claimed_request_context(username),
                                                request.form.get("password", ""),
                                                str(current_app.config["SECRET_KEY"]), BROWSER)
    except AuthenticationFailed as exc:
        if exc.code == "password_change_required":
            flash(LOGIN_MESSAGES[exc.code], "info")
            return redirect(url_for("auth.change_password", username=username))
        message = LOGIN_MESSAGES.get(exc.code, exc.message)
        return render_template("login.html", next=request.form.get("next", ""), error=message,
                               username=username), 401
    session.clear()  # a fresh session at login: nothing carried over from before (fixation)
    session["user"] = found.username
    session["sid"] = credential  # the server-side session: logout and a password change end it
    session["seen"] = engine().clock.now().timestamp()
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
@public
def logout() -> Any:
    """Ends the session on the server too: a copy of the old cookie no longer signs anybody in."""
    if isinstance(session.get("sid"), str):
        engine().sign_out(claimed_request_context(str(session.get("user", ""))), session["sid"],
                          str(current_app.config["SECRET_KEY"]))
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@public
def change_password() -> Any:
    """Open without a session: a one-time or expired password cannot sign in until it is changed."""
    username = request.values.get("username", "").strip()
    if request.method == "GET":
        return render_template("password.html", username=username)
    new = request.form.get("new_password", "")
    if new != request.form.get("repeat_password", ""):
        return render_template("password.html", username=username, error="The two new passwords differ."), 400
    try:
        engine().change_password(claimed_request_context(username), request.form.get("old_password", ""), new)
    except (AuthenticationFailed, ValidationFailed) as exc:
        message = LOGIN_MESSAGES.get(exc.code, exc.message)
        return render_template("password.html", username=username, error=message), 400
    session.clear()
    flash("Password changed. Sign in with the new password.", "success")
    return redirect(url_for("auth.login"))


@bp.get("/account")
@signed_in
def account() -> Any:
    return redirect(url_for("auth.change_password", username=session.get("user", "")))
