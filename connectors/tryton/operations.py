"""The ERP contract (``connectors.erp``) implemented on Tryton's production and stock_lot modules.

State changes use Tryton's own workflow buttons (``wait``, ``assign_try``, ``run``, ``do``, ``cancel``,
``draft``); Tryton skips a transition its workflow does not allow, so every change is read back and a
refused one is a business error a boundary event can catch. Repeating a call with the same result is a
no-op, so a retried job never applies twice.

Lot disposition: Tryton has no lot status; the disposition is a note on the lot (``ir.note``, shown
in Tryton's client) reading ``GMP disposition: <released|quarantined|rejected>``, the latest one wins.

Lots with the production report (stock_lot): the product lot is a Tryton ``stock.lot`` (found or created by
its number) set on the order's output move before it is done, so Tryton's own traceability knows it. Each
lot consumed is a ``stock.lot`` of its material on an input move of the order with the quantity taken from
it (``connectors.tryton.lot_moves``: why and how), and a note on the lot
(``GMP consumed: <qty> <unit> by production <number>``), once per report.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors import erp
from connectors.tryton.client import TrytonClient
from connectors.tryton.lot_moves import INPUT_FIELDS, business_error, issue_lots, lot_shares, related
from engine.operations import CallContext, Operation

ORDER_FIELDS = ["number", "state", "product.code", "product.rec_name", "quantity", "unit.symbol",
                "bom.rec_name", "planned_start_date", "planned_date", "inputs", "outputs", "location",
                "warehouse", "company"]
MOVE_FIELDS = ["product", "product.code", "quantity", "unit", "unit.symbol", "state", "from_location",
               "to_location"]
BUTTONS = {"draft": "draft", "waiting": "wait", "assigned": "assign_try", "running": "run", "done": "do",
           "cancelled": "cancel"}
DISPOSITION_PREFIX = "GMP disposition: "
CONSUMED_PREFIX = "GMP consumed: "


def _date(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__class__") == "date":
        return date(value["year"], value["month"], value["day"]).isoformat()
    return value if value is None else str(value)


class TrytonProduction:
    def __init__(self, client: TrytonClient) -> None:
        self.client = client

    # -- reads ---------------------------------------------------------------------------------------------
    def _order_row(self, order: str | int) -> dict[str, Any]:
        domain = [["id", "=", order]] if isinstance(order, int) else [["number", "=", order]]
        rows = self.client.model("production", "search_read", domain, 0, 2, None, ORDER_FIELDS)
        if not rows:
            raise business_error(f"The ERP has no production order '{order}'.", "order_not_found")
        return dict(rows[0])

    def _moves(self, ids: list[int]) -> list[dict[str, Any]]:
        return list(self.client.model("stock.move", "read", ids, MOVE_FIELDS)) if ids else []

    def _lines(self, ids: list[int]) -> list[dict[str, Any]]:
        return [{"product": related(m, "product"), "quantity": m["quantity"],
                 "unit": related(m, "unit", "symbol")}
                for m in sorted(self._moves(ids), key=lambda m: m["id"])]

    def get_order(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        row = self._order_row(params["order"])
        return {
            "id": row["id"], "number": row["number"], "state": row["state"],
            "product": related(row, "product"), "product_name": related(row, "product", "rec_name"),
            "quantity": row["quantity"], "unit": related(row, "unit", "symbol"),
            "bom": related(row, "bom", "rec_name"),
            "planned_start_date": _date(row["planned_start_date"]),
            "planned_date": _date(row["planned_date"]),
            "inputs": self._lines(row["inputs"]), "outputs": self._lines(row["outputs"]),
        }

    # -- state -----------------------------------------------------------------------------------------------
    def set_state(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        row = self._order_row(params["order"])
        target, current = params["state"], row["state"]
        if current == target:
            return {"order": row["number"] or row["id"], "state": current, "changed": False}
        if current in ("running", "done") and target not in ("cancelled",):
            raise business_error(f"Production order {row['number']} is already {current}; it cannot become "
                                 f"{target}.", "order_already_released")
        self.client.model("production", BUTTONS[target], [row["id"]])
        now = self._order_row(row["id"])["state"]
        if now != target:
            code = ("materials_unavailable" if target == "assigned" and now == "waiting"
                    else "order_state_conflict")
            raise business_error(f"Production order {row['number']} stayed {now}: Tryton does not allow "
                                 f"{current} → {target}" + (" (materials are not available)"
                                                           if code == "materials_unavailable" else "") + ".",
                                 code)
        return {"order": row["number"] or row["id"], "state": now, "changed": True}

    # -- results ---------------------------------------------------------------------------------------------
    def report_production(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        row = self._order_row(params["order"])
        produced = float(params["produced_quantity"])
        outputs = [m for m in self._moves(row["outputs"])
                   if m["product"] == (row.get("product.") or {}).get("id")]
        if row["state"] == "done":
            if outputs and abs(sum(m["quantity"] for m in outputs) - produced) < 1e-9:
                return {"order": row["number"], "state": "done", "applied": False}
            raise business_error(f"Production order {row['number']} is already done with another produced "
                                 "quantity.", "order_already_done")
        if row["state"] != "running":
            raise business_error(f"Production order {row['number']} is {row['state']}; results are reported "
                                 "for running orders.", "order_not_running")
        if not outputs:
            raise business_error(f"Production order {row['number']} has no output move for its product.",
                                 "order_has_no_output")
        consumed = params.get("consumed", [])
        inputs = self._inputs(row)
        returns = self._returns(row, inputs, consumed)  # refuses before anything changes
        shares = lot_shares(row["number"], consumed)
        issue_lots(self.client, row, inputs, shares, self._lot)
        self._create_returns(row, [(move, quantity) for move, quantity in returns
                                   if related(move, "product") not in shares])
        values: dict[str, Any] = {"quantity": produced}
        if params.get("product_lot"):
            values["lot"] = self._lot(str(params["product_lot"]), int(outputs[0]["product"]))
        self.client.model("stock.move", "write", [outputs[0]["id"]], values)
        self._note_consumed_lots(row, params.get("consumed", []), context)
        if outputs[1:]:
            self.client.model("stock.move", "write", [m["id"] for m in outputs[1:]], {"quantity": 0})
        self.client.model("production", "do", [row["id"]])
        state = self._order_row(row["id"])["state"]
        if state != "done":
            raise business_error(f"Tryton did not finish production order {row['number']} (it is {state}).",
                                 "order_state_conflict")
        return {"order": row["number"], "state": state, "applied": True}

    def _inputs(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        ids = row["inputs"]
        return list(self.client.model("stock.move", "read", ids, INPUT_FIELDS)) if ids else []

    def _returns(self, row: dict[str, Any], inputs: list[dict[str, Any]],
                 consumed: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
        """What goes back to the warehouse: Tryton issues the inputs when the order starts running; a material
        consumed less than issued (less what went back already) returns as an output move. More than issued
        must be issued in Tryton first (its RPC cannot force an assignment): refused before anything
        changes, as is a material the order has no input of."""
        issued: dict[str, dict[str, Any]] = {}
        for move in inputs:
            entry = issued.setdefault(related(move, "product"), {"quantity": 0.0, "move": move})
            entry["quantity"] += move["quantity"] if move["state"] == "done" else 0.0
        for move in self._moves(row["outputs"]):
            if related(move, "product") in issued and move["state"] != "cancelled":  # a material gone back
                issued[related(move, "product")]["quantity"] -= move["quantity"]
        returns = []
        for item in consumed:
            line = issued.get(item["product"])
            if line is None:
                raise business_error(f"Production order {row['number']} has no input of {item['product']}.",
                                     "unknown_material")
            delta = line["quantity"] - float(item["quantity"])
            if delta < -1e-9:
                raise business_error(f"{item['quantity']} of {item['product']} consumed but only "
                                     f"{line['quantity']} issued to order {row['number']}; issue the rest "
                                     "in the ERP first.", "consumption_exceeds_issue")
            if delta > 1e-9:
                returns.append((line["move"], delta))
        return returns

    def _create_returns(self, row: dict[str, Any], returns: list[tuple[dict[str, Any], float]]) -> None:
        for move, quantity in returns:
            self.client.model("stock.move", "create", [{
                "product": move["product"], "unit": move["unit"], "quantity": quantity,
                "company": row["company"], "from_location": row["location"],
                "to_location": move["from_location"],
                "production_output": row["id"], "unit_price": "0", "currency": self._currency(row)}])

    def _currency(self, row: dict[str, Any]) -> int:
        return int(self.client.model("company.company", "read", [row["company"]],
                                     ["currency"])[0]["currency"])

    # -- lots ------------------------------------------------------------------------------------------------
    def _lot(self, number: str, product: int) -> int:
        """The id of the product's ``stock.lot`` with this number, created when Tryton has none yet."""
        found = self.client.model("stock.lot", "search", [["number", "=", number], ["product", "=", product]],
                                  0, 1, None)
        if found:
            return int(found[0])
        return int(self.client.model("stock.lot", "create", [{"number": number, "product": product}])[0])

    def _note_consumed_lots(self, row: dict[str, Any], consumed: list[dict[str, Any]],
                            context: CallContext) -> None:
        products = {related(m, "product"): (int(m["product"]), related(m, "unit", "symbol"))
                    for m in self._moves(row["inputs"])}
        for item in consumed:
            product, unit = products[item["product"]]  # _returns refused unknown materials
            for share in item.get("lots") or []:
                lot = self._lot(str(share["lot"]), product)
                marker = f"[gmpflow {context.idempotency_key}]"
                resource = f"stock.lot,{lot}"
                if self.client.model("ir.note", "search", [["resource", "=", resource],
                                                           ["message", "like", f"%{marker}%"]], 0, 1, None):
                    continue
                self.client.model("ir.note", "create", [{
                    "resource": resource,
                    "message": f"{CONSUMED_PREFIX}{share['quantity']:g} {unit} by production {row['number']}"
                               f"\n{marker}"}])

    def set_lot_disposition(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        lots = self.client.model("stock.lot", "search",
                                 [["number", "=", params["lot"]], ["product.code", "=", params["product"]]],
                                 0, 2, None)
        if not lots:
            raise business_error(f"The ERP has no lot {params['lot']} of {params['product']}.",
                                 "lot_not_found")
        resource = f"stock.lot,{lots[0]}"
        marker = f"[gmpflow {context.idempotency_key}]"
        done = self.client.model("ir.note", "search", [["resource", "=", resource],
                                                       ["message", "like", f"%{marker}%"]], 0, 1, None)
        if not done:
            reason = f"\nReason: {params['reason']}" if params.get("reason") else ""
            self.client.model("ir.note", "create", [{
                "resource": resource,
                "message": f"{DISPOSITION_PREFIX}{params['disposition']}{reason}\n{marker}"}])
        return {"lot": params["lot"], "disposition": self.lot_disposition(lots[0]), "applied": not done}

    def lot_disposition(self, lot_id: int) -> str | None:
        """The latest disposition recorded on the lot, or None."""
        notes = self.client.model("ir.note", "search_read", [["resource", "=", f"stock.lot,{lot_id}"],
                                                             ["message", "like", f"{DISPOSITION_PREFIX}%"]],
                                  0, 1, [["id", "DESC"]], ["message"])
        if not notes:
            return None
        return str(notes[0]["message"]).splitlines()[0].removeprefix(DISPOSITION_PREFIX).strip()


def operations(production: TrytonProduction) -> list[Operation]:
    return [
        Operation("erp.get_production_order", production.get_order, erp.GET_ORDER_PARAMS, erp.ORDER_RESULT,
                  idempotent=True, description="Read a production order: product, BoM, quantity, dates, "
                                               "planned inputs and outputs."),
        Operation("erp.set_order_state", production.set_state, erp.SET_STATE_PARAMS, idempotent=True,
                  description="Move a production order to a state through the ERP's workflow."),
        Operation("erp.report_production", production.report_production, erp.REPORT_PARAMS, idempotent=True,
                  description="Report the produced quantity and consumed materials of a running order; "
                              "the order becomes done."),
        Operation("erp.set_lot_disposition", production.set_lot_disposition, erp.DISPOSITION_PARAMS,
                  erp.DISPOSITION_RESULT, idempotent=True,
                  description="Record a lot's disposition (released, quarantined, rejected)."),
    ]
