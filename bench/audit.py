"""Audit-trail queries on a large trail: ``gmpflow bench --audit-events N`` (1,000,000 in the issue).

Fills a fresh SQLite store with N chained events spread over actors, actions, objects and a year,
then times the query service for each filter (first page, and a deep page) and a full verification.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select, update

from engine.audit import event_hash
from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import AuditEvent, AuditHead

ACTIONS = ("task.completed", "task.created", "task.claimed", "instance.started", "signature.created",
           "job.completed", "masterdata.version_created", "user.login_failed")
BATCH = 20_000


def _fill(engine: Gmpflow, count: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.db.engine.begin() as conn:
        seq, prev = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
        count += seq
        while seq < count:
            rows: list[dict[str, Any]] = []
            for _ in range(min(BATCH, count - seq)):
                seq += 1
                row = {"seq": seq, "at": start + timedelta(seconds=seq * 31), "actor_id": f"user{seq % 50}",
                       "actor_name": f"User {seq % 50}", "action": ACTIONS[seq % len(ACTIONS)],
                       "object_type": "task" if seq % 3 else "instance", "object_id": str(seq // 7),
                       "object_label": f"object {seq // 7}", "before": None, "after": {"n": seq},
                       "reason": None, "correlation_id": None, "prev_hash": prev}
                row["hash"] = prev = event_hash(row, engine.db.audit_key)  # keyed since init
                rows.append(row)
            conn.execute(insert(AuditEvent), rows)
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))


def _timed(call: Any, repeat: int = 5) -> float:
    """Median milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(sorted(times)[len(times) // 2], 2)


def audit_query_costs(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        engine = Gmpflow(Database(f"sqlite:///{folder}/audit.db"), FrozenClock(), change_control="off")
        engine.init_database()
        started = time.perf_counter()
        _fill(engine, count)
        fill_seconds = round(time.perf_counter() - started, 1)
        june = datetime(2026, 6, 1, tzinfo=timezone.utc)
        queries = {
            "by_object": dict(object_type="task", object_id=str(count // 14)),
            "by_actor": dict(actor="user7"),
            "by_action": dict(action="signature.created"),
            "by_time_range": dict(after=june, before=june + timedelta(days=1)),
            "by_actor_and_action": dict(actor="user7", action="task.completed"),
        }
        result: dict[str, Any] = {"events": count, "fill_seconds": fill_seconds}
        for name, filters in queries.items():
            result[f"{name}_ms"] = _timed(lambda f=filters: engine.audit_events(**f, limit=100))
        result["by_actor_page_100_ms"] = _timed(lambda: engine.audit_events(actor="user7", limit=100,
                                                                            offset=10_000))
        started = time.perf_counter()
        report = engine.verify_audit()
        result["verify_seconds"] = round(time.perf_counter() - started, 1)
        result["verify_ok"] = report.ok
        engine.db.dispose()
    return result
