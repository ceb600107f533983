"""Exponential backoff with a cap and a little jitter: between alert deliveries, between restarts."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th consecutive failure: initial * factor**(n-1), capped, minus up to `jitter`."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.1  # a fraction of the delay, so that many monitors do not retry in lockstep

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum < math.inf and self.factor >= 1 and 0 <= self.jitter <= 1):
            raise ValueError(f"a backoff needs 0 < initial <= maximum (finite), factor >= 1 and jitter "
                             f"from 0 to 1, got {self}")

    def delay(self, failures: int, rand: float = 0.0, retry_after: float | None = None) -> float:
        """Seconds to wait after `failures` (≥ 1) failures in a row; `rand` in [0, 1) draws the jitter.

        A server's Retry-After is honoured when it asks for longer, up to ten times the cap.
        """
        if failures < 1:
            return 0.0
        steps = failures - 1
        if self.factor > 1:
            # Past the cap the delay stays there: never raise the factor to the failure count's power,
            # which overflows a float after ~1,024 failures (a sink down for days, a crash loop).
            steps = min(steps, math.ceil(math.log(self.maximum / self.initial, self.factor)) + 1)
        base = min(self.maximum, self.initial * self.factor ** steps)
        delay = base * (1.0 - self.jitter * min(max(rand, 0.0), 1.0))
        if retry_after is not None and retry_after > delay:
            delay = min(retry_after, self.maximum * 10)
        return delay
