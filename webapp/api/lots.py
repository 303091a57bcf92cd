"""Material lots (``gmp.lots``): receive a lot (in quarantine; its ``lot_disposition`` instance starts with
it), list and read lots with their history. There is deliberately no route that sets a lot's status: only the
``lot_disposition`` model does, after a QA signature (``Released`` or ``Rejected``)."""

from __future__ import annotations

from typing import Any

from gmp.genealogy import DIRECTIONS
from gmp.lots import CREATORS
from gmp.services import GmpServices
from gmp.states import LotStatus
from webapp.api import api
from webapp.api.auth import engine, principal
from webapp.api.openapi import operation
from webapp.api.queries import Query, choice, query_args, text
from webapp.api.schemas import listing, ref
from webapp.jsonio import json_body
from webapp.request_context import request_context

STATUSES = tuple(s.value for s in LotStatus)


class LotFilters(Query):
    material, status = text(), choice(STATUSES, typed=False)


class GenealogyQuery(Query):
    direction = choice(DIRECTIONS, typed=False)


@api.post("/lots")
@operation("Receive a material lot: stored in `quarantine`, its disposition (model `lot_disposition`, "
           "business key = the lot id) starts with it", tags=["lots"], body="NewLotRequest",
           response=ref("Lot"), status=201,
           description=f"For the roles {', '.join(sorted(CREATORS))}; anyone else: 403 `not_permitted` "
                       "(audited). "
                       "Invalid fields: 422 `lot_invalid` with `errors` per field; keys other than the "
                       "documented ones: 422 `undeclared_field`; a known `lot_id`: 409 `lot_exists`.")
def create_lot() -> Any:
    return engine().pack(GmpServices).create_lot(request_context(), json_body()), 201


@api.get("/lots")
@operation("Material lots, filtered by material and by status as read now (`expired`: released, past expiry)",
           tags=["lots"], response=listing("Lot"),
           query=LotFilters)
def list_lots() -> Any:
    return engine().pack(GmpServices).list_lots(**query_args())


@api.get("/lots/<lot_id>")
@operation("One material lot with its history: created, each status change (who, when, why, the deciding "
           "instance), each consumption (batch, step, quantity, who, when)", tags=["lots"],
           response=ref("LotWithHistory"))
def get_lot(lot_id: str) -> Any:
    return engine().pack(GmpServices).get_lot(lot_id)


@api.get("/genealogy/<lot_id>")
@operation("A lot's genealogy across any number of levels: `backward` (default) what it was made from, "
           "`forward` the batches that used it and what they made (a recall in one call)", tags=["lots"],
           response=ref("Genealogy"),
           query=GenealogyQuery,
           description="Nodes are lots and batches; edges point the way material flowed (lot → batch: "
                       "consumed, batch → lot: produced), quantities summed per pair. For the roles that "
                       "read every record and the participants of a batch of the graph (403 "
                       "`not_permitted`); an unknown lot: 404 `lot_not_found`.")
def get_genealogy(lot_id: str) -> Any:
    return engine().pack(GmpServices).genealogy(lot_id, query_args().get("direction", "backward"),
                                                reader=principal())
