"""A connector plugin for the crash-safety tests: ``crash.apply`` posts to the test's counterpart over HTTP.

Loaded by ``gmpflow`` subprocesses through the entry point group ``gmpflow.connectors`` (see
``tests.crash_support.plugin_path``), the same way a third-party connector is. The counterpart's URL is
``GMPFLOW_CRASH_COUNTERPART_URL``; the idempotency key travels in the ``Idempotency-Key`` header.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

from connectors.hookspecs import Setting, hookimpl
from engine.errors import ConnectorError
from engine.operations import CallContext, Operation

URL_SETTING = "GMPFLOW_CRASH_COUNTERPART_URL"


@hookimpl
def gmpflow_settings() -> list[Setting]:
    return [Setting(URL_SETTING, "The crash-safety test's counterpart (tests only).")]


@hookimpl
def gmpflow_operations(config: Mapping[str, str]) -> list[Operation]:
    url = config.get(URL_SETTING, "")

    def apply(params: dict[str, Any], context: CallContext) -> Any:
        if not url:
            raise ConnectorError(f"{URL_SETTING} is not set.", retryable=False)
        request = urllib.request.Request(
            f"{url}/apply", data=json.dumps(params).encode(), method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": context.idempotency_key})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except OSError as exc:
            raise ConnectorError(f"The counterpart did not answer: {exc}") from None

    return [Operation("crash.apply", apply, idempotent=True,
                      params_schema={"type": "object", "properties": {"item": {"type": "string"}},
                                     "required": ["item"]},
                      description="Applies an effect once per idempotency key at the test's counterpart.")]
