"""The step-cost statistic the benchmarks share (a leaf module: `bench.core` and `bench.sop` use it)."""

from __future__ import annotations

import statistics

WINDOW = 31  # step costs: the median of the 31 steps nearest the probed step


def around(timings: dict[int, float], probe: int, width: int = WINDOW) -> float:
    """The median cost of the ``width`` steps nearest ``probe``: one step's time on a shared machine varies
    by half from one step to the next, the median of a window around it by a few percent."""
    nearest = sorted(timings, key=lambda n: (abs(n - probe), n))[:width]
    return round(statistics.median(timings[n] for n in nearest), 2)
