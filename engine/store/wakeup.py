"""The signal a commit gives the job workers of its process when it made a job due (``Database.jobs_due``).

Waiters keep the generation they last saw, so one notification wakes every waiter and none is lost between
a worker's poll and its wait.
"""

from __future__ import annotations

import threading

JOBS_CHANNEL = "gmpflow_jobs"  # PostgreSQL's LISTEN/NOTIFY channel: workers of other processes wake too


class Wakeup:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float | None) -> int:
        """Block until a notification after generation ``seen`` or ``timeout`` seconds; the generation now."""
        with self._changed:
            if self._generation == seen:
                self._changed.wait(timeout)
            return self._generation
