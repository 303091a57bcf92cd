"""The equipment connector against an asyncua OPC UA server with a small equipment model."""

from __future__ import annotations

import pytest

from connectors.plugins import build_registry
from engine.errors import ConnectorError
from engine.operations import CallContext
from tests.tryton_server import free_port


def read(url: str, equipment: str) -> dict:
    op = build_registry({"GMPFLOW_OPCUA_URL": url}).get("equipment.get_status")
    op.validate_params({"equipment": equipment})
    return op.call({"equipment": equipment}, CallContext("t", 1, 1))


def test_an_idle_equipment_reports_its_status_and_calibration_due_date(opcua_equipment) -> None:
    assert read(opcua_equipment.url, "GRAN-01") == {
        "equipment": "GRAN-01", "status": "available", "calibration_due": "2027-01-31", "current_batch": None}


def test_an_equipment_in_use_reports_its_current_batch(opcua_equipment) -> None:
    status = read(opcua_equipment.url, "COMP-02")
    assert (status["status"], status["current_batch"]) == ("in_use", "B-2026-042")


def test_an_unknown_equipment_is_a_business_error(opcua_equipment) -> None:
    with pytest.raises(ConnectorError) as err:
        read(opcua_equipment.url, "NOPE-99")
    assert (err.value.bpmn_error_code, err.value.retryable) == ("equipment_not_found", False)


def test_an_unreachable_opc_ua_server_is_a_retryable_error() -> None:
    with pytest.raises(ConnectorError) as err:
        read(f"opc.tcp://127.0.0.1:{free_port()}/", "GRAN-01")
    assert err.value.retryable is True and err.value.code == "counterpart_unavailable"
