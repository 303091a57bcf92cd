"""The consumed lots on a production order's input moves, so Tryton answers "which production consumed lot X".

Why this shape (Tryton 8.2's ``production`` and ``stock_lot`` sources): ``Production.run`` does every input
move (``Move.do(inputs)``) when the order starts running — at order release, before any lot is picked — and
``stock_lot`` denies writing ``lot`` on a done move (``_deny_modify_done_cancel``). So the inputs cannot wait,
undone, for the consumption, nor be given their lots afterwards. What Tryton does allow on a running order:

1. new input moves (``stock.move`` created with ``production_input``: that field is read-only only once the
   move exists), one per lot and quantity, each carrying its ``stock.lot``;
2. assigning them with the order's own ``assign_try`` button (it assigns draft inputs against the stock of
   that lot, ``stock_lot`` groups by lot; a running order stays running) and doing them (``stock.move.do``;
   a draft move from storage must be assigned first);
3. cancelling the unlotted inputs ``run`` issued for those materials (a done move may be cancelled by the
   Stock Cancellation group; the order's cost skips cancelled inputs).

Then Tryton's own traceability holds: ``stock.move`` by lot gives the consuming production and quantity,
``stock.lot.trace`` links each consumed lot to the order's outputs (the product lot) and back.

Order of the changes: the lot moves are made and done first (an assignment Tryton refuses is undone: the new
moves are deleted) and the unlotted ones cancelled last. A retry skips the lot moves already done, so a
report that stopped half-way (Tryton down, cancellation refused) completes once on the next attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.tryton.client import TrytonClient, TrytonError
from engine.errors import ConnectorError

EPSILON = 1e-9
OPEN_STATES = ("staging", "draft", "assigned")


def business_error(message: str, bpmn_error_code: str) -> ConnectorError:
    return ConnectorError(message, code=bpmn_error_code, retryable=False, bpmn_error_code=bpmn_error_code)


def related(row: dict[str, Any], relation: str, key: str = "code") -> Any:
    """A field of a related record, as Tryton's ``read`` gives it (``"product."``: {code, ...})."""
    return (row.get(f"{relation}.") or {}).get(key)


def lot_shares(order: str, consumed: list[dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """Material code → [(lot, quantity)] for each material reported with lots; refuses (before anything
    changes) lots that do not add up to the material's consumed quantity."""
    shares: dict[str, list[tuple[str, float]]] = {}
    for item in consumed:
        lots: dict[str, float] = {}
        for share in item.get("lots") or []:
            lots[str(share["lot"])] = lots.get(str(share["lot"]), 0.0) + float(share["quantity"])
        if not lots:
            continue
        total = sum(lots.values())
        if abs(total - float(item["quantity"])) > 1e-6:
            raise business_error(f"The lots of {item['product']} consumed by order {order} add up to "
                                 f"{total:g}, not to the {float(item['quantity']):g} consumed: every "
                                 "quantity consumed must name its lot.", "lot_quantity_mismatch")
        shares[str(item["product"])] = sorted(lots.items())
    return shares


def issue_lots(client: TrytonClient, row: dict[str, Any], inputs: list[dict[str, Any]],
               shares: dict[str, list[tuple[str, float]]], lot_id: Callable[[str, int], int]) -> None:
    """Make the order's input moves carry ``shares`` (from ``lot_shares``); ``inputs`` are the order's input
    moves as read now (fields of ``INPUT_FIELDS``), ``lot_id`` finds or creates a product's lot."""
    if not shares:
        return
    _discard(client, [m for m in inputs if m["state"] in OPEN_STATES])  # left by an attempt that failed
    done = [m for m in inputs if m["state"] == "done"]
    new = []
    for product, lots in shares.items():
        issued = [m for m in done if related(m, "product") == product]
        [template, *_] = [m for m in inputs if related(m, "product") == product]  # refused when none
        for lot, quantity in lots:
            missing = quantity - sum(m["quantity"] for m in issued if related(m, "lot", "number") == lot)
            if missing > EPSILON:
                new.append({"product": template["product"], "unit": template["unit"], "quantity": missing,
                            "lot": lot_id(lot, int(template["product"])), "company": row["company"],
                            "from_location": template["from_location"], "to_location": row["location"],
                            "production_input": row["id"]})
    if new:
        client.model("stock.move", "create", new)
        client.model("production", "assign_try", [row["id"]])
        made = client.model("stock.move", "search_read", [["production_input", "=", row["id"]],
                                                          ["state", "in", list(OPEN_STATES)]],
                            0, None, None, INPUT_FIELDS)
        short = sorted({f"{related(m, 'lot', 'number')} ({related(m, 'product')})" for m in made
                        if m["state"] != "assigned"})
        if short:
            _discard(client, made)
            raise business_error(f"Tryton has not enough stock of lot {', '.join(short)} where production "
                                 f"order {row['number']} picks its materials: the lots consumed must be in "
                                 "Tryton's stock before the production is reported.", "lot_not_available")
        client.model("stock.move", "do", [m["id"] for m in made])
    unlotted = [m["id"] for m in done if related(m, "product") in shares and not m.get("lot")]
    if unlotted:
        try:
            client.model("stock.move", "cancel", unlotted)
        except TrytonError as exc:
            raise TrytonError(f"{exc.message} The lots are on production order {row['number']}'s input "
                              "moves; its unlotted inputs stay until gmpflow's Tryton user may cancel done "
                              "moves (group Stock Cancellation) and the report is retried.",
                              kind=exc.kind) from exc


def _discard(client: TrytonClient, moves: list[dict[str, Any]]) -> None:
    """Delete input moves that are not done (an assigned move goes back to draft first)."""
    assigned = [m["id"] for m in moves if m["state"] == "assigned"]
    if assigned:
        client.model("stock.move", "draft", assigned)
    if moves:
        client.model("stock.move", "delete", [m["id"] for m in moves])


INPUT_FIELDS = ["product", "product.code", "quantity", "unit", "unit.symbol", "state", "from_location",
                "to_location", "lot", "lot.number"]
