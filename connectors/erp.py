"""The ERP operations' contract: names and JSON Schemas, shared by every ERP backend.

Tryton (``connectors.tryton``) implements them for a real ERP; the reference simulator's HTTP ERP
(``connectors.simulator.client``) implements the same contract for demos. Models name the operation,
never the backend, so a model lints and runs the same against either.
"""

from __future__ import annotations

from typing import Any

ORDER_STATES = ["request", "draft", "waiting", "assigned", "running", "done", "cancelled"]
ORDER_REF: dict[str, Any] = {"type": ["string", "integer"],
                             "description": "The order's number (a string) or its ERP id (an integer)."}
_LINE = {"type": "object", "properties": {"product": {"type": "string"}, "quantity": {"type": "number"},
                                          "unit": {"type": "string"}}}

GET_ORDER_PARAMS: dict[str, Any] = {
    "type": "object", "properties": {"order": ORDER_REF}, "required": ["order"],
    "additionalProperties": False}
ORDER_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "number", "state", "product", "quantity", "unit"],
    "properties": {
        "id": {"type": "integer"}, "number": {"type": ["string", "null"]},
        "state": {"enum": ORDER_STATES},
        "product": {"type": "string"}, "product_name": {"type": "string"},
        "quantity": {"type": "number"}, "unit": {"type": "string"},
        "bom": {"type": ["string", "null"]},
        "planned_start_date": {"type": ["string", "null"], "format": "date"},
        "planned_date": {"type": ["string", "null"], "format": "date"},
        "inputs": {"type": "array", "items": _LINE}, "outputs": {"type": "array", "items": _LINE},
    },
}
SET_STATE_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["order", "state"],
    "properties": {"order": ORDER_REF,
                   "state": {"enum": ["draft", "waiting", "assigned", "running", "cancelled"],
                             "description": "The state to reach; reaching the current state is a no-op."}},
}
LOT_SHARE: dict[str, Any] = {"type": "object", "required": ["lot", "quantity"],
                             "properties": {"lot": {"type": "string"}, "quantity": {"type": "number"}}}
LOT_SHARES: dict[str, Any] = {"type": "array", "items": LOT_SHARE}
REPORT_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["order", "produced_quantity"],
    "properties": {
        "order": ORDER_REF,
        "produced_quantity": {"type": "number", "minimum": 0},
        "product_lot": {"type": ["string", "null"],
                        "description": "The lot the batch produced (gmpflow's product lot id)."},
        "consumed": {"type": "array", "items": {"type": "object", "required": ["product", "quantity"],
                                                "properties": {"product": {"type": "string"},
                                                               "quantity": {"type": "number", "minimum": 0},
                                                               "lots": LOT_SHARES}},
                     "description": "Consumed materials by product code, each with the lots it came from; "
                                    "omitted ones keep the planned quantity."},
    },
}
DISPOSITIONS = ["released", "quarantined", "rejected"]
DISPOSITION_PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["lot", "product", "disposition"],
    "properties": {"lot": {"type": "string", "description": "The lot number."},
                   "product": {"type": "string", "description": "The product code."},
                   "disposition": {"enum": DISPOSITIONS},
                   "reason": {"type": "string"}},
}
DISPOSITION_RESULT: dict[str, Any] = {
    "type": "object", "properties": {"lot": {"type": "string"}, "disposition": {"enum": DISPOSITIONS},
                                     "applied": {"type": "boolean"}}}
