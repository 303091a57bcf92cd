"""The OpenAPI 3.1 document, generated with apispec from the app's registered API routes.

Each view carries its operation (``@operation(...)``); paths and path parameters come from the
url map, so a route cannot exist without appearing here (a test checks every route is documented).
Query parameters are a marshmallow schema (``webapp.api.queries``) that apispec's MarshmallowPlugin
documents and the view loads; request bodies are JSON Schema (``webapp.api.schemas``), documented and
validated from the same dict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app, request

from webapp.api.schemas import SCHEMAS, ref
from webapp.ratelimits import PASSWORD_ROUTES

if TYPE_CHECKING:
    from webapp.api.queries import Query

F = TypeVar("F", bound=Callable[..., Any])
_RULE_ARG = re.compile(r"<(?:(?P<conv>[^:<>]+):)?(?P<name>[^<>]+)>")
PATH_SCHEMAS = {"id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
                "key": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$"}}
ERROR_STATUSES = {"400": "The request or a filter is invalid (per-field `errors`)",
                  "401": "No, a forged or an expired bearer token",
                  "403": "The user lacks the role for this action, or a signature was refused "
                         "(`signature_*` codes)",
                  "404": "No such object",
                  "409": "The object's state does not allow the action",
                  "413": "The request body is larger than 1 MB",
                  "500": "Unexpected server error"}
# only on the routes that take a password without a token (``webapp.ratelimits.PASSWORD_ROUTES``)
RATE_LIMITED = ("429", "Too many failed attempts from this client address (`rate_limited`); retry after "
                       "`Retry-After` seconds")


def operation(summary: str, *, tags: list[str], response: dict[str, Any] | None = None, status: int = 200,
              body: str | None = None, query: type[Query] | None = None, public: bool = False,
              description: str = "", media_type: str = "application/json") -> Callable[[F], F]:
    """Attach an OpenAPI operation to a view: ``response`` schema for ``status`` (as ``media_type``),
    request ``body`` schema name, ``query`` parameters (read with ``query_args()``); ``public`` operations
    need no bearer token."""
    op: dict[str, Any] = {"summary": summary, "tags": tags,
                          "responses": {str(status): {"description": "Success"}}}
    if description:
        op["description"] = description
    if response is not None:
        op["responses"][str(status)]["content"] = {media_type: {"schema": response}}
    if body:
        # required when the schema requires a field (an absent body is then a 400), optional otherwise
        op["requestBody"] = {"required": bool(SCHEMAS[body].get("required")),
                             "content": {"application/json": {"schema": ref(body)}}}
    if query:
        op["parameters"] = [{"in": "query", "schema": query}]
    for code in ERROR_STATUSES:
        if public and code == "403":
            continue
        op["responses"].setdefault(code, {"$ref": f"#/components/responses/Problem{code}"})
    op["responses"]["default"] = {"$ref": "#/components/responses/ProblemDefault"}
    if public:
        op["security"] = []

    def attach(view: F) -> F:
        view.__openapi__ = op  # type: ignore[attr-defined]
        view.__openapi_query__ = query  # type: ignore[attr-defined]
        view.__openapi_body__ = body  # type: ignore[attr-defined]
        return view

    return attach


def declared(what: str) -> Any:
    """What the current request's ``@operation`` declares: ``"query"`` (its schema) or ``"body"`` (a name)."""
    return getattr(current_app.view_functions[request.endpoint or ""], f"__openapi_{what}__")


def api_rules(app: Flask, blueprint: str = "api") -> list[Any]:
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith(f"{blueprint}.")]


def openapi_path(rule: str) -> str:
    return _RULE_ARG.sub(lambda m: "{" + m.group("name") + "}", rule)


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(title="gmpflow API", version="1", openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
                   info={"description": "gmpflow: a BPMN engine for regulated manufacturing. Errors are "
                                        "application/problem+json with a stable `code`."})
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    problem = {"application/problem+json": {"schema": ref("Problem")}}
    for code, text in (*ERROR_STATUSES.items(), RATE_LIMITED):
        spec.components.response(f"Problem{code}", {"description": text, "content": problem})
    spec.components.response("ProblemDefault", {"description": "An error", "content": problem})
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(api_rules(app), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "__openapi__", None)
        if op is None:
            continue
        entry = paths.setdefault(openapi_path(rule.rule), {"operations": {}, "parameters": []})
        if rule.endpoint in PASSWORD_ROUTES:
            limited = {RATE_LIMITED[0]: {"$ref": f"#/components/responses/Problem{RATE_LIMITED[0]}"}}
            op = {**op, "responses": {**op["responses"], **limited}}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            entry["operations"][method.lower()] = {**op, "operationId": rule.endpoint.split(".", 1)[1]}
        for match in _RULE_ARG.finditer(rule.rule):
            param = {"in": "path", "name": match.group("name"), "required": True,
                     "schema": PATH_SCHEMAS.get(match.group("conv") or "", {"type": "string"})}
            if param not in entry["parameters"]:
                entry["parameters"].append(param)
    for path, entry in paths.items():
        spec.path(path=path, operations=entry["operations"], parameters=entry["parameters"] or None)
    document = spec.to_dict()
    document["security"] = [{"bearerAuth": []}]
    return document
