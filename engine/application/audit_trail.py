"""The audit trail: read, verify (chain, anchors, signatures, sealed rows), anchor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine import anchors, audit, sealed, signatures
from engine.application.base import EngineCore
from engine.audit import Actor
from engine.errors import GmpflowError
from engine.packs import SealedTable
from engine.store.models import AuditEvent, AuditHead


class AuditServices(EngineCore):
    """The audit trail: read, verified, anchored outside the database."""

    def audit_events(self, *, object_type: str | None = None, object_id: str | None = None,
                     actor: str | None = None, action: str | None = None, after: datetime | None = None,
                     before: datetime | None = None, correlation_id: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[AuditEvent]:
        """Events in chain order; ``correlation_id``: those of one request (its ``X-Request-Id``)."""
        query = select(AuditEvent)
        for column, value in ((AuditEvent.object_type, object_type), (AuditEvent.object_id, object_id),
                              (AuditEvent.actor_id, actor), (AuditEvent.action, action),
                              (AuditEvent.correlation_id, correlation_id)):
            if value:
                query = query.where(column == value)
        if after:
            query = query.where(AuditEvent.at >= after)
        if before:
            query = query.where(AuditEvent.at < before)
        with self.db.read() as session:
            return list(session.scalars(query.order_by(AuditEvent.seq).limit(limit).offset(offset)))

    def verify_audit(self) -> audit.ChainReport:
        """The audit chain (keyed), the database against the anchor file's checkpoints, every signature's
        record hash and binding to its record, and every sealed row's MAC (``engine.sealed``); the first
        failure is reported. ``checked`` counts events, checkpoints, signatures and rows."""
        with self.db.read() as session:
            report = audit.verify_chain(session)
            if not report.ok:
                return report
            checked = report.checked
            lines, anchor_problem = anchors.verify(session, self.anchors)
            checked += lines
            if anchor_problem is not None:
                return audit.ChainReport(False, checked, anchor_problem.first_broken, anchor_problem.reason)
            signed, failure = signatures.verify_signatures(session)
            checked += signed
            if failure:
                return audit.ChainReport(False, checked, None, f"signature {failure[0]}: {failure[1]}")
            rows_checked, problem = sealed.verify_rows(session, self.sealed_tables())
            checked += rows_checked
        if problem is not None:
            return audit.ChainReport(False, checked, None, str(problem), table=problem.table,
                                     row_id=problem.row_id)
        return audit.ChainReport(True, checked, None, None)

    def anchor_audit(self, actor: Actor, *, only_if_changed: bool = False) -> dict[str, Any] | None:
        """Append a checkpoint of the chain's head (sequence, MAC, time) to the anchor file and record it in
        the trail (``audit.anchored``); returns the line, or None when ``only_if_changed`` and nothing but
        the last anchor's own event happened since. Raises AnchorBroken when the file does not verify."""
        now = self.clock.now()
        with self.db.unit_of_work() as session:
            head = session.get(AuditHead, 1)
            if head is None or head.keyed_from is None:
                raise GmpflowError("The audit trail has no key yet: run `gmpflow init` to introduce it.",
                                   code="audit_not_keyed")
            with self.anchors.locked() as lines:
                if only_if_changed and lines and head.seq <= lines[-1]["seq"] + 1:
                    return None
                line = self.anchors.append(lines, head.seq, head.hash, now)
            audit.record(session, actor, anchors.ANCHORED_ACTION, "audit", line["n"], f"anchor {line['n']}",
                         at=now, after={"anchor": line["n"], "seq": line["seq"], "mac": line["mac"],
                                        "line_mac": line["line_mac"], "file": str(self.anchors.path)})
        for store in self.checkpoint_stores:
            store.append(line)
        return line


    def sealed_tables(self) -> list[SealedTable]:
        """The packs' append-only sealed tables (``engine.packs.SealedTable``)."""
        return [table for tables in self.packs.hook.gmpflow_sealed_tables() for table in tables]
