"""The sandbox's limits, and the checks every guard uses to refuse an operation before it does the work.

A C-level operation (``10**10**8``, ``int(Decimal('1e100000000'))``, ``str`` of a nested list) holds the GIL
until it ends: the deadline of ``environment`` cannot stop it and every other request of the server waits.
So each operation that could be large is sized first and refused when the result would pass a limit;
the deadline and the allocation budget of a run are only the safety net for many small operations.
"""

from __future__ import annotations

import decimal
import gc
import threading
import time
from typing import Any

MAX_ITEMS = 1_000_000  # longest string / sequence / range a script may build
MAX_INT_BITS = 100_000  # largest integer (about 30,000 digits)
MAX_FORMAT_WIDTH = 1_000  # largest width or precision in a format spec, longest strftime/strptime format
MAX_ALLOCATED = 10 * MAX_ITEMS  # items and characters that the sized operations of one run may create
MAX_DECIMAL_EXPONENT = 9_999  # Decimals stay within 1E-9999 .. 9.99E+9999 (int() of one: ~33,000 bits)
MAX_DECIMAL_DIGITS = 1_000  # digits of a Decimal built from a string, an int or a tuple


class Refused(BaseException):
    """A runtime guard refused an operation. A BaseException so that user ``except`` cannot swallow it."""


class _Run(threading.local):
    allocated = 0

    def __init__(self) -> None:
        # every run computes in this thread's copy (operations set its flags), set and reset by environment
        self.decimal_context = decimal.Context(prec=28, Emax=MAX_DECIMAL_EXPONENT, Emin=-MAX_DECIMAL_EXPONENT,
                                               traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                                                      decimal.Overflow])
        # the names and values the environment and the caller put beside the task data: not the script's
        # variables, so locals() leaves them out (engine.sandbox.variables); set by environment for a run
        self.injected: dict[str, Any] = {}


RUN = _Run()  # the current thread's run; environment resets ``allocated`` when a run starts


class _Collections(threading.local):
    """The CPU time this thread spent in the garbage collector: a full collection of a large process (a
    server after a day's work) can take a second, in whichever thread allocated last. It is not the
    script's time, so the deadline does not count it (``environment``)."""

    spent = 0.0
    started: float | None = None


COLLECTIONS = _Collections()


def _count_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        COLLECTIONS.started = time.thread_time()
    elif COLLECTIONS.started is not None:
        COLLECTIONS.spent += time.thread_time() - COLLECTIONS.started
        COLLECTIONS.started = None


gc.callbacks.append(_count_collection)


def refuse_size(size: int, what: str) -> None:
    """Refuse a result of more than MAX_ITEMS items, and count it toward the run's allocation budget."""
    if size > MAX_ITEMS:
        raise Refused(f"{what} would create more than {MAX_ITEMS:,} items or characters")
    RUN.allocated += size
    if RUN.allocated > MAX_ALLOCATED:
        raise Refused(f"{what}: the code would create more than {MAX_ALLOCATED:,} items or characters "
                      "in all")


def check_int_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise Refused(f"{what} would create an integer of more than {MAX_INT_BITS:,} bits")
