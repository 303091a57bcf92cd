"""``POST /tokens``: exchange username and password for a bearer token."""

from __future__ import annotations

from typing import Any

from webapp.api import api, body
from webapp.api.auth import engine, issue_token
from webapp.api.openapi import operation
from webapp.api.schemas import ref
from webapp.jsonio import iso


@api.post("/tokens")
@operation("Issue a bearer token", tags=["auth"], body="TokenRequest", response=ref("Token"), public=True,
           description="A wrong password answers 401 and counts toward the account's lockout.")
def issue() -> Any:
    data = body("TokenRequest")
    principal = engine().authenticate(data["username"], data["password"])
    token, expires_at = issue_token(principal)
    return {"token": token, "expires_at": iso(expires_at)}
