"""Fixtures and helpers for the REST API tests (a plugin of the root conftest.py; holds no tests).

``api`` is a client that logs people in by username and checks that every response it sees
matches the OpenAPI document (status documented, body valid against the schema, media type).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from engine.errors import Conflict
from engine.services import Gmpflow
from tests.conftest import ADMIN, ROOT
from webapp import create_app

DEMO = ROOT / "gmp" / "processes" / "demo_approval"
PASSWORD = "correct horse battery"
ACCOUNTS = {"olivia": ["operator"], "oscar": ["operator"], "sam": ["supervisor"], "quinn": ["qa"],
            "paula": ["planner"], "ada": ["admin"], "erin": ["integration"]}


@pytest.fixture
def app(engine: Gmpflow) -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret"}, engine=engine)


@pytest.fixture
def accounts(engine: Gmpflow) -> dict[str, list[str]]:
    """The people of ``ACCOUNTS``, created when first used (password hashing is slow on purpose)."""
    return ACCOUNTS


class Api:
    """A test client speaking as a named user; checks each response against the OpenAPI document."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.tokens: dict[str, str] = {}
        self._spec: dict[str, Any] | None = None
        self._created: set[str] = set()

    def ensure_user(self, username: str) -> None:
        """Create the account ``username`` of ``ACCOUNTS`` unless this test already did."""
        if username not in self._created:
            try:
                self.app.extensions["gmpflow"].add_user(ADMIN, username, username.title(), PASSWORD,
                                                       ACCOUNTS[username])
            except Conflict:  # created through another app on the same engine
                pass
            self._created.add(username)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            self.ensure_user(username)
            response = self.call("POST", "/api/v1/tokens", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.json
            self.tokens[username] = body(response)["token"]
        return self.tokens[username]

    def call(self, method: str, path: str, *, as_: str | None = None, token: str | None = None,
             **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        if as_:
            token = self.token(as_)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        self.check_documented(method, path.split("?", 1)[0], response)
        return response

    def get(self, path: str, as_: str | None = None, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, as_=as_, **kwargs)

    def post(self, path: str, as_: str | None = None, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, as_=as_, **kwargs)

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = body(self.client.get("/api/v1/openapi.json"))
        return self._spec

    def check_documented(self, method: str, path: str, response: TestResponse) -> None:
        """The response's status is documented for its operation and its body fits the schema."""
        adapter = self.app.url_map.bind("localhost")
        try:
            endpoint, _ = adapter.match(path, method=method)
        except Exception:  # unrouted: a problem (404/405), checked below against the Problem schema
            endpoint = None
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json", response.data
            self.validate(response.json, {"$ref": "#/components/schemas/Problem"})
        if endpoint is None or not endpoint.startswith("api."):
            return
        operation = next(op for item in self.spec["paths"].values() for m, op in item.items()
                         if isinstance(op, dict) and op.get("operationId") == endpoint.split(".", 1)[1])
        documented = (operation["responses"].get(str(response.status_code))
                      or operation["responses"]["default"])
        if "$ref" in documented:
            documented = self.spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
        content = documented.get("content", {})
        if content:
            assert response.mimetype in content, (response.mimetype, list(content))
            if response.is_json:  # HTML and PDF copies: their media type is what is checked
                self.validate(response.json, content[response.mimetype]["schema"])

    def validate(self, body: Any, schema: dict[str, Any]) -> None:
        Draft202012Validator({"components": self.spec["components"], **schema}).validate(body)


def body(response: TestResponse) -> Any:
    """The response's JSON body; fails the test when it has none (Flask types ``response.json`` as
    optional)."""
    data = response.json
    assert data is not None, (response.status_code, response.data[:200])
    return data


@pytest.fixture
def api(app: Flask, accounts: dict[str, list[str]]) -> Api:
    return Api(app, app.test_client())


def start_demo(api: Api, business_key: str = "REQ-1", as_: str = "olivia") -> dict[str, Any]:
    response = api.post("/api/v1/process-definitions/demo_approval/instances", as_=as_,
                        json={"business_key": business_key, "variables": {}})
    assert response.status_code == 201, response.json
    return body(response)  # type: ignore[no-any-return]


def open_task(api: Api, instance_id: int, as_: str) -> dict[str, Any]:
    tasks = body(api.get(f"/api/v1/tasks?instance_id={instance_id}", as_=as_))
    assert len(tasks) == 1, tasks
    return tasks[0]  # type: ignore[no-any-return]
