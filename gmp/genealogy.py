"""Genealogy: which batches a lot went into and what they made (forward), or what a lot was made from
(backward), across any number of levels.

The graph is read from the lots' history (``lot_event``): ``consumed`` links a lot to the batch that used it
(``gmp.lots.consume``), ``produced`` links a batch to its product lot (``gmp.product_lots``). Edges
always point the way material flowed (lot → batch → lot), whichever way the graph is walked; quantities of
one lot consumed by one batch in several steps are summed. A recall from a material lot is one forward walk.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import access
from engine.errors import NotFound
from engine.identity import Principal
from engine.store.models import ProcessInstance
from gmp import lots
from gmp.tables import Lot, LotEvent

BATCH_PROCESS = "sop_execution"
DIRECTIONS = ("backward", "forward")


def _lot_node(lot: Lot, today: date) -> dict[str, Any]:
    return {"kind": "lot", "id": lot.lot_id, "material": lot.material, "status": lots.status_at(lot, today)}


def _batch_node(session: Session, batch_id: str) -> dict[str, Any]:
    """A batch's product is the material of the lot it produced; its status is its execution's."""
    product = session.scalar(select(Lot.material).join(LotEvent, LotEvent.lot_id == Lot.lot_id).where(
        LotEvent.kind == "produced", LotEvent.batch_id == batch_id).limit(1))
    status = session.scalar(select(ProcessInstance.status).where(
        ProcessInstance.process_key == BATCH_PROCESS, ProcessInstance.business_key == batch_id)
        .order_by(ProcessInstance.id.desc()).limit(1))
    return {"kind": "batch", "id": batch_id, "material": product, "status": status or "unknown"}


def _edges(session: Session, kind: str, column: Any, value: str) -> list[LotEvent]:
    return list(session.scalars(select(LotEvent).where(LotEvent.kind == kind, column == value)
                                .order_by(LotEvent.id)))


def graph(session: Session, lot_id: str, direction: str, today: date) -> dict[str, Any]:
    """``{root, nodes, edges}``; NotFound ``lot_not_found`` for an unknown lot."""
    root = session.get(Lot, lot_id)
    if root is None:
        raise NotFound(f"There is no lot {lot_id}.", code="lot_not_found")
    nodes: dict[tuple[str, str], dict[str, Any]] = {("lot", lot_id): _lot_node(root, today)}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    queue: deque[tuple[str, str]] = deque([("lot", lot_id)])

    def link(source: str, target: str, event: LotEvent) -> None:
        edge = edges.setdefault((source, target), {"from": source, "to": target, "quantity": 0.0,
                                                   "uom": event.uom})
        edge["quantity"] = round(edge["quantity"] + float(event.quantity or 0), 6)

    while queue:
        kind, key = queue.popleft()
        found: list[tuple[str, str]] = []
        if kind == "lot" and direction == "forward":
            for event in _edges(session, "consumed", LotEvent.lot_id, key):
                link(key, str(event.batch_id), event)
                found.append(("batch", str(event.batch_id)))
        elif kind == "lot":
            for event in _edges(session, "produced", LotEvent.lot_id, key):
                link(str(event.batch_id), key, event)
                found.append(("batch", str(event.batch_id)))
        elif direction == "forward":
            for event in _edges(session, "produced", LotEvent.batch_id, key):
                link(key, event.lot_id, event)
                found.append(("lot", event.lot_id))
        else:
            for event in _edges(session, "consumed", LotEvent.batch_id, key):
                link(event.lot_id, key, event)
                found.append(("lot", event.lot_id))
        for node in found:
            if node in nodes:
                continue
            if node[0] == "lot":
                lot = session.get(Lot, node[1])
                nodes[node] = _lot_node(lot, today) if lot is not None else {
                    "kind": "lot", "id": node[1], "material": None, "status": "unknown"}
            else:
                nodes[node] = _batch_node(session, node[1])
            queue.append(node)
    return {"root": lot_id, "nodes": list(nodes.values()), "edges": list(edges.values())}


def check_reader(session: Session, reader: Principal | None, found: dict[str, Any]) -> None:
    """The rule of records (``engine.access``): the record readers, or whoever took part in one of the
    batches of the graph (its execution or its steps). Raises ``not_permitted``."""
    if access.reads_every_record(reader):
        return
    batches = [n["id"] for n in found["nodes"] if n["kind"] == "batch"]
    ids: list[int] = []
    for batch_id in batches:
        ids += session.scalars(select(ProcessInstance.id).where(
            (ProcessInstance.business_key == batch_id)
            | ProcessInstance.business_key.startswith(f"{batch_id}/", autoescape=True)))
    access.check_instances(session, reader, ids, "the genealogy of this lot")
