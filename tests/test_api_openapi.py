"""The OpenAPI document describes every API route the app serves, and nothing else."""

from __future__ import annotations

import re

import pytest

from engine.services import Gmpflow
from engine.store import Database
from webapp import create_app

PUBLIC = {("post", "/api/v1/tokens"), ("get", "/api/v1/openapi.json"), ("post", "/api/v1/password")}


def unconnected_app():
    return create_app({"SECRET_KEY": "x"},
                      engine=Gmpflow(Database("sqlite:///:memory:"), change_control="off"))


@pytest.fixture
def document():
    app = unconnected_app()  # the document needs no database
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return app, response.json


def served_operations(app):
    return {(method.lower(), re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_api_route_in_the_url_map_is_documented_and_nothing_more(document):
    app, spec = document
    documented = {(method, path) for path, item in spec["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete")}
    assert documented == served_operations(app)


def test_the_document_is_openapi_3_1_with_bearer_auth_except_for_public_operations(document):
    _, spec = document
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            public = (method, path) in PUBLIC
            assert (op.get("security") == []) is public, (method, path)
            assert ("403" in op["responses"]) is not public, (method, path)
            assert op["responses"]["default"]["$ref"] == "#/components/responses/ProblemDefault"
            assert op["operationId"]


def test_path_parameters_and_request_bodies_are_described(document):
    _, spec = document
    detail = spec["paths"]["/api/v1/tasks/{task_id}/complete"]
    assert detail["parameters"][0]["name"] == "task_id"
    assert detail["parameters"][0]["schema"]["type"] == "integer"
    body = detail["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CompleteTaskRequest"}
    problem = spec["components"]["responses"]["Problem409"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail",
                                                                        "code"}
    names = {p["name"] for p in spec["paths"]["/api/v1/instances"]["get"]["parameters"]}
    assert names == {"key", "version", "status", "business_key", "started_after", "started_before", "limit",
                     "offset"}


def test_a_route_added_without_documentation_is_caught_by_the_comparison():
    app = unconnected_app()

    @app.get("/api/v1/undocumented")
    def undocumented():  # a route someone forgot to document
        return {}

    spec = app.test_client().get("/api/v1/openapi.json").json
    documented = {(m, p) for p, item in spec["paths"].items() for m in item if m != "parameters"}
    assert served_operations(app) - documented == {("get", "/api/v1/undocumented")}
