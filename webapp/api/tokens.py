"""``POST /tokens``: exchange username and password for a bearer token."""

from __future__ import annotations

from typing import Any

from webapp.api import api, body
from webapp.api.auth import issue_token
from webapp.api.openapi import operation
from webapp.api.schemas import ref
from webapp.jsonio import iso


@api.post("/tokens")
@operation("Issue a bearer token", tags=["auth"], body="TokenRequest", response=ref("Token"), public=True,
           description="A wrong password answers 401 and counts toward the account's lockout. A one-time "
                       "password (set by an admin) or one older than 180 days answers 403 "
                       "`password_change_required`: change it with POST /password first. The token expires "
                       "after `GMPFLOW_TOKEN_HOURS` (default 8) and ends at a password change or reset.")
def issue() -> Any:
    data = body()
    token, expires_at = issue_token(data["username"], data["password"])
    return {"token": token, "expires_at": iso(expires_at)}
