"""Workers: a job loop that runs each job as soon as it is due, and APScheduler for the audit anchor.

The loop sleeps until the earliest of: a commit that wrote a job (``Database.jobs_due``, notified in this
process after the commit; on PostgreSQL also a ``NOTIFY`` from any process, see ``PostgresListener``), the
next job's due time (a timer, a retry; read from the job table after every round), and the poll
``interval``, which stays as a safety net (a job written by a process whose notice was lost). Claiming is
unchanged (``engine.runtime.jobs``): a wake-up only makes a worker look sooner, so exactly-once holds as
before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.audit import Actor
from engine.services import Gmpflow
from engine.store.wakeup import JOBS_CHANNEL

log = logging.getLogger("gmpflow.worker")
BUSY_PAUSE = timedelta(milliseconds=50)  # a due job another worker holds: look again after this
LATE_MARGIN = 0.002  # seconds past a due time before looking, so the job is due when the worker reads


def anchor_tick(engine: Gmpflow) -> None:
    """The scheduled checkpoint of the audit chain (``engine.anchors``): skipped when nothing happened since
    the last one."""
    try:
        engine.anchor_audit(Actor.system(), only_if_changed=True)
    except Exception:  # the top of the loop: log and go on (a broken anchor file is also what verify reports)
        log.exception("audit anchor failed")


def _add(scheduler: BackgroundScheduler | BlockingScheduler, engine: Gmpflow, interval: float) -> None:
    """The audit anchor's schedule, every ``Config.audit_anchor_interval`` seconds (0: none; the jobs run in
    ``JobLoop``; ``interval`` is kept for the signature)."""
    every = engine.config.audit_anchor_interval
    if every:
        scheduler.add_job(anchor_tick, "interval", args=[engine], seconds=every, max_instances=1,
                          coalesce=True, id="gmpflow-audit-anchor")


class JobLoop:
    """Runs due jobs in one thread, waking at commits, due times and the poll interval (see the module)."""

    def __init__(self, engine: Gmpflow, interval: float = 1.0,
                 after_round: Callable[[int], None] | None = None) -> None:
        self.engine, self.interval = engine, interval
        self.after_round = after_round  # tests: told how many jobs each round ran
        self._wakeup = engine.db.jobs_due
        self._stopping = False
        engine.clock.on_advance(self._wakeup.notify)  # a test's clock moved: a timer may be due
        self.listener = PostgresListener(engine, self._wakeup.notify) if engine.db.is_postgres else None

    def run(self) -> None:
        if self.listener is not None:
            self.listener.start()
        seen = self._wakeup.generation
        while not self._stopping:
            ran = self._round()
            if self.after_round is not None:
                self.after_round(ran)
            if self._stopping:
                break
            seen = self._wakeup.wait(seen, self._sleep(ran))

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.notify()
        if self.listener is not None:
            self.listener.stop()

    def _round(self) -> int:
        try:
            return self.engine.run_jobs_once()
        except Exception:  # the top of the loop: log and go on; the next round retries
            log.exception("worker tick failed")
            return -1

    def _sleep(self, ran: int) -> float | None:
        """Wall seconds until the next due job, at most the poll interval."""
        if ran < 0:
            return self.interval
        try:
            due: datetime | None = self.engine.next_job_due()
        except Exception:
            log.exception("worker tick failed")
            return self.interval
        if due is None:
            return self.interval
        clock = self.engine.clock
        if ran == 0 and due <= clock.now():  # due but held by another worker (or its lease not yet read)
            due = clock.now() + BUSY_PAUSE
        until = clock.seconds_until(due)
        return self.interval if until is None else min(self.interval, until + LATE_MARGIN)


class PostgresListener:
    """``LISTEN gmpflow_jobs`` on a connection of its own, calling ``wake`` at each notification; after a
    lost connection it reconnects (the poll covers the gap)."""

    RECONNECT_AFTER = 1.0

    def __init__(self, engine: Gmpflow, wake: Callable[[], None]) -> None:
        self.engine, self.wake = engine, wake
        self._stopping = threading.Event()
        self.notices = 0  # notifications received (tests)
        self._thread = threading.Thread(target=self._listen, name="gmpflow-jobs-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                connection: Any = self.engine.db.engine.raw_connection()
                try:
                    driver = connection.driver_connection
                    driver.autocommit = True
                    driver.execute(f"LISTEN {JOBS_CHANNEL}")
                    self.wake()  # what was announced before we listened
                    while not self._stopping.is_set():
                        for _ in driver.notifies(timeout=1.0):
                            self.notices += 1
                            self.wake()
                finally:
                    connection.invalidate()  # never back to the pool in autocommit, listening
            except Exception:
                log.exception("job notifications lost; reconnecting (the poll runs meanwhile)")
                self._stopping.wait(self.RECONNECT_AFTER)


class BackgroundWorker:
    """The job loop in a daemon thread and the anchor's scheduler: what ``gmpflow run`` starts."""

    def __init__(self, engine: Gmpflow, interval: float = 1.0,
                 after_round: Callable[[int], None] | None = None) -> None:
        self.loop = JobLoop(engine, interval, after_round)
        self.scheduler = BackgroundScheduler(daemon=True)
        _add(self.scheduler, engine, interval)
        self._thread = threading.Thread(target=self.loop.run, name="gmpflow-jobs", daemon=True)

    def start(self) -> BackgroundWorker:
        self.scheduler.start()
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self, wait: bool = True) -> None:
        self.loop.stop()
        self.scheduler.shutdown(wait=wait)
        if wait:
            self._thread.join()


def start_background_worker(engine: Gmpflow, interval: float = 1.0,
                            after_round: Callable[[int], None] | None = None) -> BackgroundWorker:
    return BackgroundWorker(engine, interval, after_round).start()


def run_blocking_worker(engine: Gmpflow, interval: float = 1.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    engine.record_start()
    scheduler = BackgroundScheduler(daemon=True)
    _add(scheduler, engine, interval)
    scheduler.start()
    loop = JobLoop(engine, interval)
    log.info("gmpflow worker: jobs run when due (polling every %.1fs as a safety net)", interval)
    try:
        loop.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        loop.stop()
        scheduler.shutdown(wait=False)
