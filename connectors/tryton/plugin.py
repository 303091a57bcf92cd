"""The Tryton connector's hooks: settings from the environment, the ``erp.*`` operations.

It provides the ERP operations unless ``GMPFLOW_ERP`` names another backend (``simulator``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from connectors.hookspecs import Setting, hookimpl
from connectors.tryton.client import TrytonClient, TrytonSettings
from connectors.tryton.operations import TrytonProduction, operations
from engine.errors import ConnectorError, DefinitionError
from engine.operations import CallContext, Operation

ERP_BACKENDS = ("tryton", "simulator")
REQUIRED = ("GMPFLOW_TRYTON_URL", "GMPFLOW_TRYTON_DATABASE", "GMPFLOW_TRYTON_USER", "GMPFLOW_TRYTON_PASSWORD")


@hookimpl
def gmpflow_settings() -> list[Setting]:
    return [
        Setting("GMPFLOW_ERP", "Which ERP backend provides erp.*: 'tryton' (default) or 'simulator'."),
        Setting("GMPFLOW_TRYTON_URL", "Tryton's HTTP address, e.g. https://erp.example.com:8000."),
        Setting("GMPFLOW_TRYTON_DATABASE", "The Tryton database name."),
        Setting("GMPFLOW_TRYTON_USER", "The Tryton user gmpflow logs in as (Production, Stock and Stock "
                                       "Cancellation groups)."),
        Setting("GMPFLOW_TRYTON_PASSWORD", "That user's password.", secret=True),
    ]


@hookimpl
def gmpflow_operations(config: Mapping[str, str]) -> list[Operation]:
    backend = config.get("GMPFLOW_ERP", "tryton")
    if backend not in ERP_BACKENDS:
        raise DefinitionError(f"GMPFLOW_ERP must be one of {', '.join(ERP_BACKENDS)}, not '{backend}'.",
                              code="bad_setting")
    if backend != "tryton":
        return []
    missing = [name for name in REQUIRED if not config.get(name)]
    if missing:
        return [_unconfigured(op, missing) for op in operations(TrytonProduction(None))]  # type: ignore[arg-type]
    settings = TrytonSettings(config["GMPFLOW_TRYTON_URL"], config["GMPFLOW_TRYTON_DATABASE"],
                              config["GMPFLOW_TRYTON_USER"], config["GMPFLOW_TRYTON_PASSWORD"])
    return operations(TrytonProduction(TrytonClient(settings)))


def _unconfigured(operation: Operation, missing: list[str]) -> Operation:
    """The same operation (name, schemas: models lint alike everywhere) failing with what to set."""
    def call(params: dict[str, Any], context: CallContext) -> Any:
        raise ConnectorError(f"{operation.name} needs the Tryton connector configured; set "
                             f"{', '.join(missing)} in gmpflow's environment.",
                             code="connector_not_configured", retryable=False)

    return replace(operation, call=call)
