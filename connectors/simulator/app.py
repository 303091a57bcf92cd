"""The simulator's web app (Flask). State lives in one ``Counterpart`` object, so tests can look inside.

MES side — ``POST /b2mml``: a ProcessOperationsSchedule is stored and answered with an
AcknowledgeOperationsSchedule (or 202 and no acknowledgement when ``acknowledge`` is off); a
ProcessOperationsPerformance finishes the ERP order; a SyncMaterialLot sets a lot's disposition; a
SyncOperationsDefinition stores a recipe version. A repeated BODID is answered like the first time and
applied once. Hostile or invalid XML gets 400 and leaves nothing behind.
``GET /received`` lists what was applied (BODID, kind, order, XML).

ERP side (JSON) — ``POST /orders``, ``GET /orders/<number>``, ``POST /orders/<number>/state``,
``POST /orders/<number>/production``, ``GET|POST /lots/<lot>``. ``POST /_control`` sets
``acknowledge`` and ``fail_next`` (answer the next N requests with 503: an ERP that is down).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from connectors.b2mml import messages as m
from engine.errors import GmpflowError

ORDER_FLOW = ["draft", "waiting", "assigned", "running", "done"]


@dataclass
class Counterpart:
    acknowledge: bool = True
    fail_next: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)   # BODID -> the first answer
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    lots: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_order(self, number: str, product: str, quantity: float, unit: str = "u", state: str = "waiting",
                  **extra: Any) -> dict[str, Any]:
        order = {"id": len(self.orders) + 1, "number": number, "state": state, "product": product,
                 "product_name": extra.pop("product_name", product), "quantity": quantity, "unit": unit,
                 "bom": extra.pop("bom", None), "planned_start_date": extra.pop("planned_start_date", None),
                 "planned_date": extra.pop("planned_date", None), "inputs": extra.pop("inputs", []),
                 "outputs": [{"product": product, "quantity": quantity, "unit": unit}], "applied": [],
                 **extra}
        self.orders[number] = order
        return order


def _problem(status: int, code: str, message: str) -> Response:
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    return response


def create_app(counterpart: Counterpart | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = m.MAX_BYTES + 1024
    state = counterpart or Counterpart()
    app.extensions["counterpart"] = state

    @app.before_request
    def down() -> Response | None:
        with state.lock:
            if state.fail_next > 0 and request.path != "/_control":
                state.fail_next -= 1
                return _problem(503, "unavailable", "the simulator is down on purpose")
        return None

    @app.post("/_control")
    def control() -> Response:
        body = request.get_json(force=True)
        with state.lock:
            state.acknowledge = bool(body.get("acknowledge", state.acknowledge))
            state.fail_next = int(body.get("fail_next", state.fail_next))
        return jsonify({"acknowledge": state.acknowledge, "fail_next": state.fail_next})

    # -- MES: B2MML ------------------------------------------------------------------------------------------
    @app.post("/b2mml")
    def b2mml() -> Response:
        data = request.get_data()
        try:
            kind = m.message_kind(data)
            handler = HANDLERS.get(kind)
            if handler is None:
                return _problem(400, "b2mml_unsupported", f"the simulator does not take {kind} messages")
            bodid = m.bodid_of(data)
            with state.lock:
                if bodid in state.replies:  # a duplicate: the same answer, applied once
                    status, body = state.replies[bodid]
                    return Response(body, status=status, mimetype="application/xml")
                status, body, order = handler(state, data)
                state.replies[bodid] = (status, body)
                state.received.append({"bodid": bodid, "kind": kind, "order": order, "xml": data.decode()})
        except GmpflowError as exc:
            return _problem(400, exc.code, str(exc))
        return Response(body, status=status, mimetype="application/xml")

    @app.get("/received")
    def received() -> Response:
        with state.lock:
            return jsonify(list(state.received))

    # -- ERP: orders and lots --------------------------------------------------------------------------------
    @app.post("/orders")
    def create_order() -> tuple[Response, int]:
        body = request.get_json(force=True)
        with state.lock:
            order = state.add_order(**body)
        return jsonify(order), 201

    @app.get("/orders/<number>")
    def get_order(number: str) -> Response:
        order = state.orders.get(number)
        if order is None:
            return _problem(404, "order_not_found", f"the ERP has no production order '{number}'")
        return jsonify({k: v for k, v in order.items() if k != "applied"})

    @app.post("/orders/<number>/state")
    def set_state(number: str) -> Response:
        target = request.get_json(force=True)["state"]
        with state.lock:
            order = state.orders.get(number)
            if order is None:
                return _problem(404, "order_not_found", f"the ERP has no production order '{number}'")
            current = order["state"]
            if current == target:
                return jsonify({"order": number, "state": current, "changed": False})
            if current in ("running", "done") and target != "cancelled":
                return _problem(409, "order_already_released", f"order {number} is already {current}")
            order["state"] = target
        return jsonify({"order": number, "state": target, "changed": True})

    @app.post("/orders/<number>/production")
    def report(number: str) -> Response:
        body = request.get_json(force=True)
        with state.lock:
            order = state.orders.get(number)
            if order is None:
                return _problem(404, "order_not_found", f"the ERP has no production order '{number}'")
            if order["state"] == "done":
                return jsonify({"order": number, "state": "done", "applied": False})
            if order["state"] != "running":
                return _problem(409, "order_not_running", f"order {number} is {order['state']}")
            order.update(state="done", produced_quantity=body["produced_quantity"],
                         consumed=body.get("consumed", []), product_lot=body.get("product_lot"))
        return jsonify({"order": number, "state": "done", "applied": True})

    @app.route("/lots/<lot>", methods=["GET", "POST"])
    def lot(lot: str) -> Response:
        with state.lock:
            if request.method == "POST":
                body = request.get_json(force=True)
                known = state.lots.setdefault(lot, {"lot": lot, "product": body["product"], "keys": []})
                applied = body.get("key") not in known["keys"]
                if applied:
                    known.update(disposition=body["disposition"], reason=body.get("reason", ""))
                    known["keys"].append(body.get("key"))
                return jsonify({"lot": lot, "disposition": known["disposition"], "applied": applied})
            if lot not in state.lots:
                return _problem(404, "lot_not_found", f"the ERP has no lot {lot}")
            return jsonify({k: v for k, v in state.lots[lot].items() if k != "keys"})

    return app


def _schedule(state: Counterpart, data: bytes) -> tuple[int, bytes, str]:
    schedule = m.parse_schedule(data)
    order = state.orders.get(schedule.order)
    if order is not None:
        order["applied"].append(schedule.bodid)
    if not state.acknowledge:
        return 202, b"", schedule.order
    return 200, m.build_acknowledgement(schedule, f"ack-{schedule.bodid}"), schedule.order


def _performance(state: Counterpart, data: bytes) -> tuple[int, bytes, str]:
    perf = m.parse_performance(data)
    order = state.orders.get(perf.order)
    if order is not None:
        order.update(state="done", produced_quantity=perf.produced.quantity,
                     consumed=[{"product": c.product, "quantity": c.quantity} for c in perf.consumed])
    return 202, b"", perf.order


def _lot(state: Counterpart, data: bytes) -> tuple[int, bytes, str]:
    d = m.parse_lot_disposition(data)
    state.lots.setdefault(d.lot, {"lot": d.lot, "product": d.product, "keys": []}).update(
        disposition=d.disposition, reason=d.reason)
    return 202, b"", ""


def _definition(state: Counterpart, data: bytes) -> tuple[int, bytes, str]:
    d = m.parse_operations_definition(data)
    state.definitions[d.id] = d.version
    return 202, b"", ""


HANDLERS = {"ProcessOperationsSchedule": _schedule, "ProcessOperationsPerformance": _performance,
            "SyncMaterialLot": _lot, "SyncOperationsDefinition": _definition}
