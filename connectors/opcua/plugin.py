"""The equipment connector: ``equipment.get_status`` reads one equipment's variables from an OPC UA server.

Address-space convention (the equipment model the company's OPC UA server, or gateway, exposes), all
browse names in the namespace ``GMPFLOW_OPCUA_NAMESPACE``::

    Objects / Equipment / <equipment id> / Status            String  e.g. available, in_use, maintenance
                                         / CalibrationDue    DateTime (or an ISO date String)
                                         / CurrentBatch      String  empty when idle

Each call opens its own session (asyncio.run from the worker thread) and closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from connectors.hookspecs import Setting, hookimpl
from engine.errors import ConnectorError
from engine.operations import CallContext, Operation

DEFAULT_NAMESPACE = "urn:gmpflow:equipment"
TIMEOUT_SECONDS = 10.0
VARIABLES = ("Status", "CalibrationDue", "CurrentBatch")
PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": ["equipment"],
                          "properties": {"equipment": {"type": "string", "description": "The equipment id."}}}
RESULT: dict[str, Any] = {"type": "object", "properties": {
    "equipment": {"type": "string"}, "status": {"type": "string"},
    "calibration_due": {"type": ["string", "null"], "format": "date"},
    "current_batch": {"type": ["string", "null"]}}}

logging.getLogger("asyncua").setLevel(logging.WARNING)


def _iso_date(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


class EquipmentReader:
    def __init__(self, url: str | None, namespace: str, user: str | None = None, password: str | None = None,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.url, self.namespace, self.user, self.password, self.timeout = (url, namespace, user, password,
                                                                             timeout)

    def get_status(self, params: dict[str, Any], context: CallContext) -> dict[str, Any]:
        if not self.url:
            raise ConnectorError("equipment.get_status needs GMPFLOW_OPCUA_URL in gmpflow's environment.",
                                 code="connector_not_configured", retryable=False)
        return asyncio.run(self._read(self.url, params["equipment"]))

    async def _read(self, url: str, equipment: str) -> dict[str, Any]:
        from asyncua import Client, ua

        client = Client(url, timeout=self.timeout)
        if self.user:
            client.set_user(self.user)
            client.set_password(self.password or "")
        try:
            await client.connect()
        except (OSError, asyncio.TimeoutError, ua.UaError) as exc:
            raise ConnectorError(f"The OPC UA server at {self.url} cannot be reached: "
                                 f"{type(exc).__name__}.", code="counterpart_unavailable") from None
        try:
            try:
                ns = await client.get_namespace_index(self.namespace)
            except ValueError:
                raise ConnectorError(f"The OPC UA server at {self.url} has no namespace {self.namespace}.",
                                     code="opcua_namespace_missing", retryable=False) from None
            values: dict[str, Any] = {}
            for name in VARIABLES:
                path = ["0:Objects", f"{ns}:Equipment", f"{ns}:{equipment}", f"{ns}:{name}"]
                try:
                    node = await client.nodes.root.get_child(path)
                except ua.UaStatusCodeError:
                    if name == "Status":
                        raise ConnectorError(f"The OPC UA server knows no equipment '{equipment}'.",
                                             code="equipment_not_found", retryable=False,
                                             bpmn_error_code="equipment_not_found") from None
                    values[name] = None
                    continue
                values[name] = await node.read_value()
        finally:
            await client.disconnect()
        return {"equipment": equipment, "status": str(values["Status"]),
                "calibration_due": _iso_date(values["CalibrationDue"]),
                "current_batch": values["CurrentBatch"] or None}


@hookimpl
def gmpflow_settings() -> list[Setting]:
    return [Setting("GMPFLOW_OPCUA_URL", "The OPC UA server, e.g. opc.tcp://scada.example.com:4840."),
            Setting("GMPFLOW_OPCUA_NAMESPACE",
                    f"The equipment model's namespace URI (default {DEFAULT_NAMESPACE})."),
            Setting("GMPFLOW_OPCUA_USER", "A user for the OPC UA server, if it wants one."),
            Setting("GMPFLOW_OPCUA_PASSWORD", "That user's password.", secret=True)]


@hookimpl
def gmpflow_operations(config: Mapping[str, str]) -> list[Operation]:
    reader = EquipmentReader(config.get("GMPFLOW_OPCUA_URL"),
                             config.get("GMPFLOW_OPCUA_NAMESPACE", DEFAULT_NAMESPACE),
                             config.get("GMPFLOW_OPCUA_USER"), config.get("GMPFLOW_OPCUA_PASSWORD"))
    return [Operation("equipment.get_status", reader.get_status, PARAMS, RESULT, idempotent=True,
                      description="Read an equipment's status, calibration due date and current batch "
                                  "(OPC UA).")]
