"""The REST API under ``/api/v1``: JSON in and out, bearer tokens, problems for errors.

Routes parse input, call one ``Gmpflow`` method, render JSON. Modules by area: ``tokens``,
``definitions``, ``instances``, ``batches`` (batch records), ``tasks``, ``operations`` (messages,
incidents, audit, signatures), ``users`` (accounts, roles, password changes), ``masterdata`` (types,
records, versions, drafts, imports), ``lots`` (material lots).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from jsonschema import Draft202012Validator
from werkzeug.routing import BaseConverter

from engine.errors import ValidationFailed
from webapp.api.auth import authenticate_request
from webapp.api.openapi import build_spec, operation
from webapp.api.schemas import REQUESTS
from webapp.jsonio import json_body

api = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_ID = 999_999_999_999_999_999
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in REQUESTS.items()}


class IdConverter(BaseConverter):
    """A database id: digits only, at most 18 of them (fits a 64-bit column on every backend)."""

    regex = r"\d{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


class KeyConverter(BaseConverter):
    """A process key: a BPMN id (an XML name without ':'), at most 200 characters."""

    regex = r"[A-Za-z_][A-Za-z0-9_.\-]{0,199}"


@api.before_request
def _authenticate() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "__openapi__", {}).get("security") == []:
        return
    g.principal = authenticate_request()


def body(schema: str) -> dict[str, Any]:
    """The JSON body, checked against the request schema ``schema``; raises ValidationFailed per field."""
    data = json_body()
    errors: dict[str, str] = {}
    for err in _VALIDATORS[schema].iter_errors(data):
        field = ".".join(str(p) for p in err.absolute_path) or (
            err.message.split("'")[1] if err.validator == "required" and "'" in err.message else "body")
        errors.setdefault(field, err.message)
    if errors:
        raise ValidationFailed("The request body does not fit the expected shape.", errors=errors)
    return data


# -- query parameters: a bad value is a 400 problem with code bad_filter -------------------------------------
def _bad(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"The parameter '{name}' {message}.", errors={name: message}, code="bad_filter")


def q_text(name: str, max_length: int = 200) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_length or "\x00" in value:
        raise _bad(name, f"must be text of at most {max_length} characters")
    return value


def q_choice(name: str, choices: tuple[str, ...]) -> str | None:
    value = q_text(name)
    if value is not None and value not in choices:
        raise _bad(name, f"must be one of {', '.join(choices)}")
    return value


def q_int(name: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, "must be a whole number") from None
    if not minimum <= number <= maximum:
        raise _bad(name, f"must be between {minimum} and {maximum}")
    return number


def q_bool(name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise _bad(name, "must be true or false")


def q_time(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(name, "must be an ISO 8601 date-time, e.g. 2026-01-05T08:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


ID_QUERY = {"type": "integer", "minimum": 0, "maximum": MAX_ID}  # what q_int accepts by default
PAGING = [{"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
          {"name": "offset", "schema": {**ID_QUERY, "default": 0}}]


def paging() -> tuple[int, int]:
    return q_int("limit", 100, minimum=1, maximum=500) or 100, q_int("offset", 0) or 0


@api.get("/openapi.json")
@operation("This OpenAPI document", tags=["meta"], response={"type": "object"}, public=True)
def openapi_document() -> Any:
    spec = current_app.extensions.get("gmpflow.openapi")
    if spec is None:
        spec = current_app.extensions["gmpflow.openapi"] = build_spec(current_app)
    return jsonify(spec)


# the route modules, imported last: they register their views on ``api``
from webapp.api import (  # noqa: E402,F401
    batches,
    definitions,
    equipment,
    instances,
    lots,
    masterdata,
    operations,
    tasks,
    tokens,
    users,
)
