"""Loading connectors: the built-ins listed in ``BUILTINS`` and third-party packages from the entry point
group ``gmpflow.connectors``, through the same hooks (``connectors.hookspecs``).

``build_registry`` is the composition root's registry factory; the installed distribution exposes it
to the engine as the entry point ``gmpflow.registry: default`` (the engine does not import connectors).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pluggy

from connectors import hookspecs
from engine.errors import ConnectorError
from engine.operations import CallContext, Operation, OperationRegistry, builtin_registry

BUILTINS = (
    "connectors.tryton.plugin",      # erp.* on Tryton (the default ERP backend)
    "connectors.simulator.plugin",   # erp.* on the reference simulator when GMPFLOW_ERP=simulator
    "connectors.b2mml.plugin",       # mes.*: B2MML V0701 over HTTP
    "connectors.opcua.plugin",       # equipment.*: OPC UA (asyncua)
)
ENTRY_POINT_GROUP = "gmpflow.connectors"


def plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager holding the built-ins and (unless told not to) every installed plugin."""
    import importlib

    pm = pluggy.PluginManager("gmpflow")
    pm.add_hookspecs(hookspecs)
    for name in BUILTINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def settings(pm: pluggy.PluginManager | None = None) -> list[hookspecs.Setting]:
    pm = pm or plugin_manager()
    return [s for batch in pm.hook.gmpflow_settings() for s in batch]


def build_registry(config: Mapping[str, str] | None = None, *,
                   pm: pluggy.PluginManager | None = None) -> OperationRegistry:
    """The engine's built-in operations plus every plugin's, configured from ``config`` (default: the
    environment). Every operation's errors have the values of secret settings replaced by ``***``."""
    config = dict(os.environ if config is None else config)
    pm = pm or plugin_manager()
    secrets = [config[s.name] for s in settings(pm) if s.secret and config.get(s.name)]
    registry = builtin_registry()
    for batch in pm.hook.gmpflow_operations(config=config):
        for operation in batch:
            registry.register(_scrubbing(operation, secrets) if secrets else operation)
    return registry


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _scrubbing(operation: Operation, secrets: list[str]) -> Operation:
    inner = operation.call

    @functools.wraps(inner)
    def call(params: dict[str, Any], context: CallContext) -> Any:
        try:
            return inner(params, context)
        except ConnectorError as exc:
            raise ConnectorError(scrub(exc.message, secrets), code=exc.code, retryable=exc.retryable,
                                 bpmn_error_code=exc.bpmn_error_code) from None
        except Exception as exc:  # an unexpected failure of the client library: keep the kind, not the secret
            raise ConnectorError(scrub(f"{type(exc).__name__}: {exc}", secrets)) from None

    return replace(operation, call=call)
