"""Process definitions and starting instances of them."""

from __future__ import annotations

from typing import Any

from webapp import jsonio
from webapp.api import api, body
from webapp.api.auth import engine
from webapp.api.openapi import operation
from webapp.api.schemas import listing, ref
from webapp.jsonio import definition
from webapp.request_context import request_context


@api.get("/process-definitions")
@operation("Deployed process definitions, every version", tags=["definitions"],
           response=listing("ProcessDefinition"),
           description="`latest_active` marks, per key, the version new instances start on; `start_roles` "
                       "names who may start it.")
def list_definitions() -> Any:
    deployments = engine().definitions()
    latest: dict[str, Any] = {}
    for dep in deployments:  # ordered by key, version
        if dep.status == "active":
            latest[dep.key] = dep.id
    return [definition(dep, set(latest.values()), engine().start_roles(dep)) for dep in deployments]


@api.post("/process-definitions/<key:key>/instances")
@operation("Start an instance of the latest active version", tags=["instances"], body="StartInstanceRequest",
           response=ref("Instance"), status=201)
def start_instance(key: str) -> Any:
    data = body()
    row = engine().start_instance(request_context(), key, data.get("business_key"), data.get("variables"))
    return jsonio.instance(row), 201
