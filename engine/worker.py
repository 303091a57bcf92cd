"""Worker loops, driven by APScheduler: the engine's ``run_once`` on an interval, never overlapping."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.anchors import anchor_interval
from engine.audit import Actor
from engine.services import Gmpflow

log = logging.getLogger("gmpflow.worker")


def _tick(engine: Gmpflow) -> None:
    try:
        engine.run_jobs_once()
    except Exception:  # the top of the loop: log and go on; the next tick retries
        log.exception("worker tick failed")


def anchor_tick(engine: Gmpflow) -> None:
    """The scheduled checkpoint of the audit chain (``engine.anchors``): skipped when nothing happened since
    the last one."""
    try:
        engine.anchor_audit(Actor.system(), only_if_changed=True)
    except Exception:  # the top of the loop: log and go on (a broken anchor file is also what verify reports)
        log.exception("audit anchor failed")


def _add(scheduler: BackgroundScheduler | BlockingScheduler, engine: Gmpflow, interval: float) -> None:
    scheduler.add_job(_tick, "interval", args=[engine], seconds=interval, max_instances=1, coalesce=True,
                      id="gmpflow-jobs")
    every = anchor_interval()
    if every:
        scheduler.add_job(anchor_tick, "interval", args=[engine], seconds=every, max_instances=1,
                          coalesce=True, id="gmpflow-audit-anchor")


def start_background_worker(engine: Gmpflow, interval: float = 1.0) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    _add(scheduler, engine, interval)
    scheduler.start()
    return scheduler


def run_blocking_worker(engine: Gmpflow, interval: float = 1.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    engine.record_start()
    scheduler = BlockingScheduler()
    _add(scheduler, engine, interval)
    log.info("gmpflow worker polling every %.1fs", interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
