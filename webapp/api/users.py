"""Users and roles (admin), and a user's own password change (also the way out of a one-time password).

Roles are data: admins add them (``POST /roles``), lanes, ``start.roles`` and ``message.senders`` name them.
Any signed-in user may list them (``GET /roles``): role names are what models show anyway, and a process
owner picks lanes from them.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from webapp import jsonio
from webapp.api import api, body
from webapp.api.auth import engine, require_roles
from webapp.api.openapi import operation
from webapp.api.schemas import listing, ref
from webapp.request_context import claimed_request_context, request_context

REASON = ("A reason is required (400 `reason_required`); the change is an audit event with who, when, what "
          "and why.")


@api.get("/users")
@operation("Every user ever created, with lock state and failed attempts (admin)", tags=["users"],
           response=listing("User"))
@require_roles("admin")
def list_users() -> Any:
    return [jsonio.user(u) for u in engine().list_users()]


@api.post("/password")
@operation("Change my password with the old one (no token needed: a one-time or expired password cannot log "
           "in)", tags=["users"], body="ChangePasswordRequest", status=204, public=True,
           description="A wrong old password answers 401 and counts toward lockout; a new password that "
                       "breaks the policy (at least 8 characters, not the username, none of the last 5) "
                       "answers 400 (`password_too_short`, `password_is_username`, `password_reused`).")
def change_password() -> Any:
    data = body()
    engine().change_password(claimed_request_context(data["username"]), data["old_password"],
                             data["new_password"])
    return Response(status=204)


def _reason() -> str:
    return str(body()["reason"])


@api.post("/users/<username>/reset-password")
@operation("Reset a password (admin): answers a one-time password that must be changed before the user can "
           "log in or sign; also unlocks", tags=["users"], body="ReasonRequest",
           response=ref("OneTimePassword"), description=REASON)
@require_roles("admin")
def reset_password(username: str) -> Any:
    one_time = engine().reset_password(request_context(_reason()), username)
    return {"username": username, "one_time_password": one_time}


@api.post("/users/<username>/unlock")
@operation("Unlock an account locked after failed attempts (admin)", tags=["users"], body="ReasonRequest",
           response=ref("User"), description=REASON)
@require_roles("admin")
def unlock_user(username: str) -> Any:
    return jsonio.user(engine().unlock_user(request_context(_reason()), username))


@api.post("/users/<username>/deactivate")
@operation("Deactivate a user (admin): no login, no signing; the username is never reused", tags=["users"],
           body="ReasonRequest", response=ref("User"), description=REASON)
@require_roles("admin")
def deactivate_user(username: str) -> Any:
    return jsonio.user(engine().set_user_active(request_context(_reason()), username, False))


@api.post("/users/<username>/activate")
@operation("Activate a deactivated user again (admin)", tags=["users"], body="ReasonRequest",
           response=ref("User"), description=REASON)
@require_roles("admin")
def activate_user(username: str) -> Any:
    return jsonio.user(engine().set_user_active(request_context(_reason()), username, True))


@api.post("/users/<username>/roles")
@operation("Grant a role (admin)", tags=["users"], body="RoleRequest", response=ref("User"),
           description=REASON)
@require_roles("admin")
def grant_role(username: str) -> Any:
    data = body()
    return jsonio.user(engine().grant_role(request_context(data["reason"]), username, data["role"]))


@api.post("/users/<username>/roles/<role>/remove")
@operation("Remove a role (admin)", tags=["users"], body="ReasonRequest", response=ref("User"),
           description=REASON)
@require_roles("admin")
def remove_role(username: str, role: str) -> Any:
    return jsonio.user(engine().remove_role(request_context(_reason()), username, role))


@api.get("/roles")
@operation("Every role, with its description (any signed-in user)", tags=["users"], response=listing("Role"))
def list_roles() -> Any:
    return [jsonio.role(r) for r in engine().list_roles()]


@api.post("/roles")
@operation("Add a role (admin): lanes, start.roles and message.senders may then name it, admins grant it",
           tags=["users"], body="NewRoleRequest", response=ref("Role"), status=201,
           description="The name is a safe identifier (2-50 of a-z, 0-9, '_', starting with a letter; 400 "
                       "`role_name_invalid`); an existing name answers 409 `role_exists`. " + REASON)
@require_roles("admin")
def add_role() -> Any:
    data = body()
    role = engine().add_role(request_context(data["reason"]), data["name"], data.get("description", ""))
    return jsonio.role(role), 201
