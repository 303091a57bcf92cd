"""Time comes from here, so tests can move it instead of sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone


class Clock:
    """The wall clock, UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def seconds_until(self, moment: datetime) -> float | None:
        """How long a waiter sleeps (wall seconds) before ``moment`` has come; ``None``: until told (a
        frozen clock's future only comes when a test moves it)."""
        return max(0.0, (moment - self.now()).total_seconds())

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the clock is moved by hand (the wall clock never is)."""


class FrozenClock(Clock):
    """A clock that only moves when told to; for tests and benchmarks. Moving it wakes whoever waits for a
    moment in its future (a worker waiting for a timer: ``engine.worker``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def seconds_until(self, moment: datetime) -> float | None:
        return 0.0 if moment <= self._now else None

    def on_advance(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self._now
