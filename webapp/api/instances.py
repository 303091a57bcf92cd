"""Process instances: search, detail, and the admin's suspend / resume / terminate."""

from __future__ import annotations

from typing import Any

from flask import Response

from engine.access import RECORD_READERS
from webapp import jsonio
from webapp.api import api
from webapp.api.auth import engine, principal, require_roles
from webapp.api.openapi import operation
from webapp.api.queries import Query, moment, paging, query_args, text, whole
from webapp.api.schemas import ref
from webapp.request_context import request_context

READERS = f"The roles {', '.join(sorted(RECORD_READERS))} see every instance"
PARTICIPANTS = (f"{READERS}; anyone else only an instance he takes part in (started it, claimed, completed "
                "or signed one of its tasks, or holds an open task of it), otherwise 403 `not_permitted`.")


class InstanceFilters(Query):
    key, version, status, business_key = text(), whole(), text(), text()
    started_after, started_before = moment(description="inclusive"), moment(description="exclusive")
    limit, offset = paging()


@api.get("/instances")
@operation("Search instances, newest first", tags=["instances"], response=ref("InstancePage"),
           query=InstanceFilters,
           description=f"{READERS}; anyone else sees only the instances he takes part in.")
def list_instances() -> Any:
    rows, total = engine().list_instances(reader=principal(), **query_args())
    return {"items": [jsonio.instance(r) for r in rows], "total": total}


@api.get("/instances/<id:instance_id>")
@operation("An instance with its variables, tasks, history, jobs and incidents", tags=["instances"],
           response=ref("InstanceDetail"), description=PARTICIPANTS)
def get_instance(instance_id: int) -> Any:
    return jsonio.instance_detail(engine().instance_detail(instance_id, reader=principal()))


@api.get("/instances/<id:instance_id>/status")
@operation("An instance's status without its variables, tasks or history (read from its row, not its state: "
           "what a client waiting for the end of an instance polls)", tags=["instances"],
           response=ref("Instance"), description=PARTICIPANTS)
def get_instance_status(instance_id: int) -> Any:
    return jsonio.instance(engine().instance_status(instance_id, reader=principal()))


@api.get("/instances/<id:instance_id>/record")
@operation("The inspector's copy of an instance as JSON: process and version, steps with who, when and data, "
           "signatures with manifestation, the instance's audit trail, values changed after first entry",
           tags=["instances"], response=ref("Record"), description=PARTICIPANTS)
def instance_record(instance_id: int) -> Any:
    return engine().instance_record(instance_id, reader=principal())


@api.get("/instances/<id:instance_id>/record.html")
@operation("The inspector's copy of an instance as HTML (the same facts as the JSON copy)",
           tags=["instances"], response={"type": "string"}, media_type="text/html", description=PARTICIPANTS)
def instance_record_html(instance_id: int) -> Any:
    return Response(engine().instance_record(instance_id, "html", reader=principal()), mimetype="text/html")


@api.get("/instances/<id:instance_id>/record.pdf")
@operation("The inspector's copy of an instance as PDF (the same facts as the JSON copy)", tags=["instances"],
           response={"type": "string", "contentMediaType": "application/pdf"}, media_type="application/pdf",
           description=PARTICIPANTS)
def instance_record_pdf(instance_id: int) -> Any:
    pdf = engine().instance_record(instance_id, "pdf", reader=principal())
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="instance-{instance_id}-record.pdf"'})


def _change(instance_id: int, action: str) -> Any:
    reason = jsonio.json_body().get("reason")  # the engine refuses a missing one (reason_required)
    reason = reason if isinstance(reason, str) else None
    row = engine().change_instance_status(request_context(reason), instance_id, action)
    return jsonio.instance(row)


@api.post("/instances/<id:instance_id>/suspend")
@operation("Suspend an instance (admin; reason required)", tags=["instances"], body="ReasonRequest",
           response=ref("Instance"))
@require_roles("admin")
def suspend_instance(instance_id: int) -> Any:
    return _change(instance_id, "suspend")


@api.post("/instances/<id:instance_id>/resume")
@operation("Resume a suspended instance (admin; reason required)", tags=["instances"], body="ReasonRequest",
           response=ref("Instance"))
@require_roles("admin")
def resume_instance(instance_id: int) -> Any:
    return _change(instance_id, "resume")


@api.post("/instances/<id:instance_id>/terminate")
@operation("Terminate an instance (admin; reason required)", tags=["instances"], body="ReasonRequest",
           response=ref("Instance"))
@require_roles("admin")
def terminate_instance(instance_id: int) -> Any:
    return _change(instance_id, "terminate")
