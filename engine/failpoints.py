"""Failpoints: named places where a test may have the process killed (``SIGKILL``, as ``kill -9`` does).

``hit(name)`` kills the current process when the environment variable ``GMPFLOW_FAILPOINT`` equals
``name``; otherwise it is one string comparison against a value read once at import. Crash-safety tests
start a real ``gmpflow worker`` with the variable set and check that a restarted one finishes the work
exactly once. The points (see ``engine.runtime.jobs``):

``job.before_call``   a service job is claimed, its connector call not yet made
``job.after_call``    the connector call returned, the task not yet completed
``job.before_commit`` the task's completion is written (flushed) but its transaction not committed
``step.before_commit`` any step on an instance (a task completed through the web app, a message...) is
                      written but not committed
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store.db import UnitOfWork

ENV = "GMPFLOW_FAILPOINT"
ARMED: str | None = os.environ.get(ENV) or None


def hit(name: str) -> None:
    """Die at once (no cleanup, no commit, no flush of buffers) when ``name`` is the armed failpoint."""
    if ARMED is not None and ARMED == name:
        os.kill(os.getpid(), signal.SIGKILL)


def before_commit(uow: UnitOfWork, name: str) -> None:
    """``hit(name)`` when ``uow`` is about to commit (after every statement of the unit was sent)."""
    if ARMED is not None and ARMED == name:
        uow.on_commit(lambda: hit(name))
