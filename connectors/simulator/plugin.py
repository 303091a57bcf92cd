"""``erp.*`` against the simulator's JSON order store, when ``GMPFLOW_ERP=simulator`` (demos, end-to-end
tests without Tryton). Same names and schemas as the Tryton backend (``connectors.erp``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connectors import erp, http
from connectors.hookspecs import Setting, hookimpl
from engine.errors import ConnectorError
from engine.operations import CallContext, Operation

BUSINESS_CODES = {"order_not_found", "order_already_released", "order_not_running", "lot_not_found"}


class SimulatorErp:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.name = f"The ERP simulator at {self.url}"

    def _call(self, method: str, path: str, what: str, body: dict[str, Any] | None = None) -> Any:
        reply = http.request(method, f"{self.url}{path}", counterpart=self.name,
                             body=json.dumps(body).encode() if body is not None else None,
                             headers={"Content-Type": "application/json"})
        if reply.status < 300:
            return json.loads(reply.body)
        if reply.status in (404, 409) and reply.content_type.startswith("application/json"):
            problem = json.loads(reply.body)
            if problem.get("code") in BUSINESS_CODES:
                raise ConnectorError(problem["message"], code=problem["code"], retryable=False,
                                     bpmn_error_code=problem["code"])
        raise http.unexpected(self.name, what, reply)

    def get_order(self, params: dict[str, Any], context: CallContext) -> Any:
        return self._call("GET", f"/orders/{params['order']}", "reading an order")

    def set_state(self, params: dict[str, Any], context: CallContext) -> Any:
        return self._call("POST", f"/orders/{params['order']}/state", "setting an order's state",
                          {"state": params["state"], "key": context.idempotency_key})

    def report(self, params: dict[str, Any], context: CallContext) -> Any:
        return self._call("POST", f"/orders/{params['order']}/production", "reporting production",
                          {**params, "key": context.idempotency_key})

    def lot(self, params: dict[str, Any], context: CallContext) -> Any:
        return self._call("POST", f"/lots/{params['lot']}", "setting a lot's disposition",
                          {**params, "key": context.idempotency_key})


@hookimpl
def gmpflow_settings() -> list[Setting]:
    return [Setting("GMPFLOW_ERP_URL", "The simulator's address when GMPFLOW_ERP=simulator.")]


@hookimpl
def gmpflow_operations(config: Mapping[str, str]) -> list[Operation]:
    if config.get("GMPFLOW_ERP") != "simulator":
        return []
    client = SimulatorErp(config.get("GMPFLOW_ERP_URL", "http://127.0.0.1:8071"))
    return [
        Operation("erp.get_production_order", client.get_order, erp.GET_ORDER_PARAMS, erp.ORDER_RESULT,
                  idempotent=True, description="Read a production order from the ERP simulator."),
        Operation("erp.set_order_state", client.set_state, erp.SET_STATE_PARAMS, idempotent=True,
                  description="Set a production order's state in the ERP simulator."),
        Operation("erp.report_production", client.report, erp.REPORT_PARAMS, idempotent=True,
                  description="Report produced and consumed quantities to the ERP simulator."),
        Operation("erp.set_lot_disposition", client.lot, erp.DISPOSITION_PARAMS, erp.DISPOSITION_RESULT,
                  idempotent=True, description="Record a lot's disposition in the ERP simulator."),
    ]
