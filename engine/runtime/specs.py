"""Specs are parsed once per deployment and cached in memory; deployments are immutable."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from engine.definitions.bundle import Bundle
from engine.errors import NotFound
from engine.spiff.parsing import ParsedDefinition, parse_bundle
from engine.store.models import Deployment


class SpecCache:
    def __init__(self) -> None:
        self._parsed: dict[int, ParsedDefinition] = {}
        self._lock = threading.Lock()

    def get(self, deployment: Deployment) -> ParsedDefinition:
        parsed = self._parsed.get(deployment.id)
        if parsed is None:
            # the key is the process it runs: the one chosen at deploy among several of the file's pools
            parsed = parse_bundle(Bundle(dict(deployment.files)), process=deployment.key)
            with self._lock:
                self._parsed[deployment.id] = parsed
        return parsed

    def cached(self, deployment_id: int) -> ParsedDefinition | None:
        """The parsed definition if this process has it already (a caller can then skip opening a session)."""
        return self._parsed.get(deployment_id)

    def get_by_id(self, session: Session, deployment_id: int) -> ParsedDefinition:
        """The parsed definition; loads the deployment's files only when it is not cached yet."""
        parsed = self._parsed.get(deployment_id)
        if parsed is None:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            parsed = self.get(deployment)
        return parsed
