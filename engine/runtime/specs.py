"""Specs are parsed once per deployment and cached in memory; deployments are immutable."""

from __future__ import annotations

import threading

from engine.definitions.bundle import Bundle
from engine.definitions.parsing import ParsedDefinition, parse_bundle
from engine.store.models import Deployment


class SpecCache:
    def __init__(self) -> None:
        self._parsed: dict[int, ParsedDefinition] = {}
        self._lock = threading.Lock()

    def get(self, deployment: Deployment) -> ParsedDefinition:
        parsed = self._parsed.get(deployment.id)
        if parsed is None:
            parsed = parse_bundle(Bundle(dict(deployment.files)))
            with self._lock:
                self._parsed[deployment.id] = parsed
        return parsed
