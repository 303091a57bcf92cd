"""Users and roles: create, activate/deactivate, unlock, reset password, grant and remove roles.

Every change goes through an engine method, which writes the audit event with the reason given here.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from engine.errors import GmpflowError
from webapp.admin import bp
from webapp.guard import engine, roles
from webapp.request_context import request_context


def _reason() -> str:
    return (request.form.get("reason") or "").strip()


def _done(message: str, action: Any) -> Any:
    try:
        result = action()
        flash(message.format(result=result), "success")
    except GmpflowError as exc:
        flash(exc.message, "error")
    return redirect(url_for("admin.users"))


@bp.get("/admin/users")
@roles("admin")
def users() -> Any:
    return render_template("admin/users.html", users=engine().list_users(),
                           roles=[r.name for r in engine().list_roles()])


@bp.post("/admin/users")
@roles("admin")
def create_user() -> Any:
    form = request.form
    username = (form.get("username") or "").strip()
    chosen = form.getlist("roles")  # the engine refuses an unknown role
    # the admin chose the password: the user must change it at first sign-in
    return _done(f"User {username} created; the password must be changed at first sign-in.",
                 lambda: engine().add_user(request_context(), username, (form.get("full_name") or "").strip(),
                                           form.get("password") or "", chosen, one_time=True))


@bp.post("/admin/users/<username>/active")
@roles("admin")
def set_active(username: str) -> Any:
    active = request.form.get("active") == "1"
    return _done(f"User {username} {'activated' if active else 'deactivated'}.",
                 lambda: engine().set_user_active(request_context(_reason() or None), username, active))


@bp.post("/admin/users/<username>/unlock")
@roles("admin")
def unlock(username: str) -> Any:
    return _done(f"User {username} unlocked.",
                 lambda: engine().unlock_user(request_context(_reason() or None), username))


@bp.post("/admin/users/<username>/reset-password")
@roles("admin")
def reset_password(username: str) -> Any:
    return _done(f"One-time password for {username}: {{result}} — hand it over in person; it must be changed "
                 "at the next sign-in.",
                 lambda: engine().reset_password(request_context(_reason() or None), username))


@bp.post("/admin/users/<username>/roles")
@roles("admin")
def grant_role(username: str) -> Any:
    role = request.form.get("role") or ""
    return _done(f"Role {role} granted to {username}.",
                 lambda: engine().grant_role(request_context(_reason() or None), username, role))


@bp.post("/admin/users/<username>/roles/<role>/remove")
@roles("admin")
def remove_role(username: str, role: str) -> Any:
    if not _reason():  # the page's confirmation asks for it; the audit trail keeps it
        flash(f"A reason is required to remove the role {role} from {username}.", "error")
        return redirect(url_for("admin.users"))
    return _done(f"Role {role} removed from {username}.",
                 lambda: engine().remove_role(request_context(_reason() or None), username, role))
