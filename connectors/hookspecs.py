"""The hook specification every connector implements (built-in or third-party).

A connector is a module or object with ``@hookimpl`` functions; built-ins are listed in
``connectors.plugins.BUILTINS``, third-party packages declare an entry point in the group
``gmpflow.connectors``. The engine may import this module (and only this one) from ``connectors``.

Hooks:

``gmpflow_settings()``
    The environment variables the connector reads, as :class:`Setting` (name, description, whether it
    is a secret). Secret values are scrubbed from every error an operation raises.
``gmpflow_operations(config)``
    The :class:`engine.operations.Operation` objects the connector provides. ``config`` is the
    environment (a read-only mapping of variable name to value); a connector whose required settings
    are absent still returns its operations: they fail with a clear ``ConnectorError`` when called, so
    models lint the same on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pluggy

from engine.operations import Operation

hookspec = pluggy.HookspecMarker("gmpflow")
hookimpl = pluggy.HookimplMarker("gmpflow")


@dataclass(frozen=True)
class Setting:
    name: str            # the environment variable, e.g. GMPFLOW_TRYTON_URL
    description: str
    secret: bool = False  # never shown in errors, audit events or task data


@hookspec
def gmpflow_settings() -> list[Setting]:  # type: ignore[empty-body]
    """The environment variables this connector reads."""


@hookspec
def gmpflow_operations(config: Mapping[str, str]) -> list[Operation]:  # type: ignore[empty-body]
    """The operations this connector provides, configured from ``config`` (the environment)."""
