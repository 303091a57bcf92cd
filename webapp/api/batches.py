"""The electronic batch record of a batch (``gmp.batch_record``) as JSON, HTML and PDF: the same facts in
each copy. Readable by the roles that read every record and by the batch's own participants
(``engine.access``; the batch review pages are for the reviewers)."""

from __future__ import annotations

from typing import Any

from flask import Response

from engine.access import RECORD_READERS
from gmp.batch_record import file_name
from gmp.services import GmpServices
from webapp.api import api
from webapp.api.auth import engine, principal
from webapp.api.openapi import operation
from webapp.api.schemas import ref

WHO = (f"For the roles {', '.join(sorted(RECORD_READERS))} and for whoever took part in one of the "
       "batch's instances; anyone else: 403 `not_permitted`.")
COPY = ("order, SOP version and its signed-late rule, every step with values against limits and first "
        "entries, who performed and verified it and when, equipment and materials, deviations and their "
        "state, corrections with reasons, incidents, the exceptions QA sees first, the release decision and "
        "the batch's audit trail")


@api.get("/batches/<batch_id>/record")
@operation(f"The electronic batch record of a batch as JSON: {COPY}", tags=["batches"],
           response=ref("BatchRecord"),
           description="`batch_id` is the business key of its SOP execution. " + WHO)
def batch_record(batch_id: str) -> Any:
    return engine().pack(GmpServices).batch_record(batch_id, reader=principal())


@api.get("/batches/<batch_id>/record.html")
@operation("The electronic batch record as HTML (the same facts as the JSON copy)", tags=["batches"],
           response={"type": "string"}, media_type="text/html", description=WHO)
def batch_record_html(batch_id: str) -> Any:
    return Response(engine().pack(GmpServices).batch_record(batch_id, "html", reader=principal()),
                    mimetype="text/html")


@api.get("/batches/<batch_id>/record.pdf")
@operation("The electronic batch record as PDF (the same facts as the JSON copy)", tags=["batches"],
           response={"type": "string", "contentMediaType": "application/pdf"}, media_type="application/pdf",
           description=WHO)
def batch_record_pdf(batch_id: str) -> Any:
    pdf = engine().pack(GmpServices).batch_record(batch_id, "pdf", reader=principal())
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{file_name(batch_id, "pdf")}"'})
