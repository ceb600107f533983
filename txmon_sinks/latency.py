"""Detection latency (arrival at the monitor minus the transaction's event time) as a cumulative histogram."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass

# Seconds. Below a second is the goal; tens of seconds is what a backlogged 2-core machine shows.
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class HistogramCounts:
    """Cumulative counts per upper bound (the last is +Inf), their sum and count, as Prometheus wants."""

    buckets: list[tuple[float, int]]
    total: int
    sum: float


class LatencyHistogram:
    """Counts per bucket since start; observed from one thread, read from others."""

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, values: Iterable[float]) -> None:
        """Add latencies (negative ones, from clock skew, count as 0)."""
        with self._lock:
            for value in values:
                value = max(value, 0.0)
                self._counts[bisect.bisect_left(self.bounds, value)] += 1
                self._sum += value

    def counts(self) -> HistogramCounts:
        """The cumulative counts now."""
        with self._lock:
            running = 0
            buckets = []
            for bound, count in zip((*self.bounds, float("inf")), self._counts, strict=True):
                running += count
                buckets.append((bound, running))
            return HistogramCounts(buckets, running, self._sum)
