"""SpiffWorkflow reads the wall clock inside its timer code; route it through the engine's clock.

Why it is monkeypatched: 3.2.0's timer code calls ``datetime.now`` with no way to pass a
clock (pinned by tests/test_spiff_seam.py).

The engine sets ``CURRENT_CLOCK`` around every step, so timers in tests follow the injected clock.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, tzinfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer

from engine.clock import Clock

# Clock is stateless (it reads the wall clock): one shared default instance is safe
CURRENT_CLOCK: ContextVar[Clock] = ContextVar("gmpflow_clock", default=Clock())  # noqa: B039


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        now = CURRENT_CLOCK.get().now()
        return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)


spiff_timer.datetime = _ClockedDatetime  # type: ignore[misc]
