"""The REST API under ``/api/v1``: JSON in and out, bearer tokens, problems for errors.

Routes parse input, call one ``Gmpflow`` method, render JSON. Modules by area: ``tokens``,
``definitions``, ``instances``, ``batches`` (batch records), ``tasks``, ``operations`` (messages,
incidents, audit, signatures), ``users`` (accounts, roles, password changes), ``masterdata`` (types,
records, versions, drafts, imports), ``lots`` (material lots).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from jsonschema import Draft202012Validator
from werkzeug.routing import BaseConverter

from engine.errors import ValidationFailed
from webapp.api.auth import authenticate_request
from webapp.api.openapi import build_spec, declared, operation
from webapp.api.schemas import REQUESTS
from webapp.jsonio import json_body

api = Blueprint("api", __name__, url_prefix="/api/v1")
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


def body() -> dict[str, Any]:
    """The JSON body, checked against the request schema the operation declares (``@operation(body=...)``);
    raises ValidationFailed per field."""
    data = json_body()
    errors: dict[str, str] = {}
    for err in _VALIDATORS[declared("body")].iter_errors(data):
        field = ".".join(str(p) for p in err.absolute_path) or (
            err.message.split("'")[1] if err.validator == "required" and "'" in err.message else "body")
        errors.setdefault(field, err.message)
    if errors:
        raise ValidationFailed("The request body does not fit the expected shape.", errors=errors)
    return data


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
