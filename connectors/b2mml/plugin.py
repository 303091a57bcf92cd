"""The MES connector: B2MML V0701 over HTTP. Each ``mes.*`` operation POSTs one message to
``GMPFLOW_MES_URL`` + ``/b2mml`` with the task's idempotency key as BODID, so a retried call is a
duplicate the MES acknowledges without applying it twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import http
from connectors.b2mml import messages as m
from connectors.hookspecs import Setting, hookimpl
from engine.errors import ConnectorError, GmpflowError
from engine.operations import CallContext, Operation

_MATERIALS = {"type": "array", "items": {
    "type": "object", "required": ["product", "quantity"], "properties": {
        "product": {"type": "string"}, "quantity": {"type": "number"}, "unit": {"type": "string"},
        "lots": {"type": "array", "description": "The lots of the quantity (B2MML MaterialLotID)",
                 "items": {"type": "object", "required": ["lot", "quantity"],
                           "properties": {"lot": {"type": "string"}, "quantity": {"type": "number"}}}}}}}
SCHEDULE_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["order", "product", "quantity", "planned_start", "planned_end", "operations_definition"],
    "properties": {"order": {"type": "string"}, "product": {"type": "string"}, "quantity": {"type": "number"},
                   "unit": {"type": "string"}, "planned_start": {"type": "string"},
                   "planned_end": {"type": "string"},
                   "operations_definition": {"type": "string",
                                             "description": "Recipe/routing id and version."},
                   "materials": _MATERIALS, "description": {"type": "string"}}}
SCHEDULE_RESULT: dict[str, Any] = {"type": "object", "properties": {
    "bodid": {"type": "string"}, "acknowledged": {"type": "boolean"},
    "acknowledgement_bodid": {"type": "string"}}}
LOT_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["lot", "product", "disposition"],
    "properties": {"lot": {"type": "string"}, "product": {"type": "string"},
                   "disposition": {"enum": sorted(m.DISPOSITIONS)}, "reason": {"type": "string"}}}
PERFORMANCE_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["order", "product", "produced_quantity"],
    "properties": {"order": {"type": "string"},
                   "product": {"type": "string", "description": "What was produced."},
                   "produced_quantity": {"type": "number", "minimum": 0}, "unit": {"type": "string"},
                   "product_lot": {"type": ["string", "null"], "description": "The lot produced."},
                   "consumed": _MATERIALS,
                   "start": {"type": ["string", "null"], "description": "ISO date-time production started."},
                   "end": {"type": ["string", "null"], "description": "ISO date-time production ended."}}}
DEFINITION_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["id", "version", "product"],
    "properties": {"id": {"type": "string"}, "version": {"type": "string"}, "product": {"type": "string"},
                   "description": {"type": "string"},
                   "segments": {"type": "array", "items": {"type": "string"}}}}


def by_lot(consumed: list[dict[str, Any]]) -> list[m.Material]:
    """One MaterialActual per lot consumed (with its MaterialLotID), or per material when no lot is known."""
    found = []
    for x in consumed:
        lots = x.get("lots") or [{"lot": None, "quantity": x["quantity"]}]
        found += [m.Material(x["product"], float(lot["quantity"]), x.get("unit", ""), "Consumed", lot["lot"])
                  for lot in lots]
    return found


class MesClient:
    def __init__(self, url: str | None, token: str | None) -> None:
        self.url, self.token = (url or "").rstrip("/"), token

    def post(self, message: bytes, what: str) -> http.Reply:
        if not self.url:
            raise ConnectorError("The MES connector needs GMPFLOW_MES_URL in gmpflow's environment.",
                                 code="connector_not_configured", retryable=False)
        headers = {"Content-Type": "application/xml"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        reply = http.request("POST", f"{self.url}/b2mml", counterpart=f"The MES at {self.url}", body=message,
                             headers=headers)
        if reply.status not in (200, 202):
            raise http.unexpected(f"The MES at {self.url}", what, reply)
        return reply

    def send_schedule(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        schedule = m.Schedule(
            context.idempotency_key, params["order"], params["product"], float(params["quantity"]),
            params.get("unit", ""), params["planned_start"], params["planned_end"],
            params["operations_definition"],
            tuple(m.Material(x["product"], float(x["quantity"]), x.get("unit", ""))
                  for x in params.get("materials", [])),
            params.get("description", ""))
        reply = self.post(m.build_schedule(schedule), f"the schedule of order {schedule.order}")
        if reply.status == 202 or not reply.body.strip():
            return {"bodid": schedule.bodid, "acknowledged": False}  # the acknowledgement comes as a message
        try:
            ack = m.parse_acknowledgement(reply.body)
        except GmpflowError as exc:
            raise ConnectorError(f"The MES answered the schedule with an invalid acknowledgement: {exc}",
                                 code="mes_bad_acknowledgement", retryable=False) from None
        if ack.original_bodid != schedule.bodid:
            raise ConnectorError(f"The MES acknowledged message {ack.original_bodid}, not {schedule.bodid}.",
                                 code="mes_bad_acknowledgement", retryable=False)
        if not ack.accepted:
            raise ConnectorError(f"The MES rejected the schedule of order {schedule.order}: "
                                 f"{ack.reason or 'no reason given'}.", code="schedule_rejected",
                                 retryable=False, bpmn_error_code="schedule_rejected")
        return {"bodid": schedule.bodid, "acknowledged": True, "acknowledgement_bodid": ack.bodid}

    def report_performance(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        performance = m.Performance(
            context.idempotency_key, params["order"],
            m.Material(params["product"], float(params["produced_quantity"]), params.get("unit", ""),
                       "Produced", params.get("product_lot")),
            tuple(by_lot(params.get("consumed", []))),
            params.get("start") or "", params.get("end") or "")
        self.post(m.build_performance(performance), f"the production results of order {performance.order}")
        return {"bodid": performance.bodid, "order": performance.order}

    def sync_lot(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        message = m.build_lot_disposition(m.LotDisposition(context.idempotency_key, params["lot"],
                                                           params["product"], params["disposition"],
                                                           params.get("reason", "")))
        self.post(message, f"the disposition of lot {params['lot']}")
        return {"bodid": context.idempotency_key, "lot": params["lot"], "disposition": params["disposition"]}

    def sync_definition(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        message = m.build_operations_definition(m.OperationsDefinition(
            context.idempotency_key, params["id"], params["version"], params["product"],
            params.get("description", ""), tuple(params.get("segments", []))))
        self.post(message, f"operations definition {params['id']} v{params['version']}")
        return {"bodid": context.idempotency_key, "id": params["id"], "version": params["version"]}


@hookimpl
def gmpflow_settings() -> list[Setting]:
    return [Setting("GMPFLOW_MES_URL", "The MES's B2MML endpoint base, e.g. https://mes.example.com/api "
                                       "(messages go to <url>/b2mml)."),
            Setting("GMPFLOW_MES_TOKEN", "A bearer token for the MES, if it wants one.", secret=True)]


@hookimpl
def gmpflow_operations(config: Mapping[str, str]) -> list[Operation]:
    client = MesClient(config.get("GMPFLOW_MES_URL"), config.get("GMPFLOW_MES_TOKEN"))
    return [
        Operation("mes.send_schedule", client.send_schedule, SCHEDULE_PARAMS, SCHEDULE_RESULT,
                  idempotent=True,
                  description="Download a released order to the MES (ProcessOperationsSchedule); "
                              "returns whether the MES acknowledged it at once."),
        Operation("mes.report_performance", client.report_performance, PERFORMANCE_PARAMS, idempotent=True,
                  description="Report an order's produced quantity and consumed materials to the MES "
                              "(ProcessOperationsPerformance)."),
        Operation("mes.sync_lot_disposition", client.sync_lot, LOT_PARAMS, idempotent=True,
                  description="Tell the MES a lot's disposition (SyncMaterialLot)."),
        Operation("mes.sync_operations_definition", client.sync_definition, DEFINITION_PARAMS,
                  idempotent=True,
                  description="Send a recipe/routing version to the MES (SyncOperationsDefinition)."),
    ]
