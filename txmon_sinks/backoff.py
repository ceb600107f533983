"""Exponential backoff between delivery attempts, with a cap and a little jitter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th consecutive failure: initial * factor**(n-1), capped, minus up to `jitter`."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.1  # a fraction of the delay, so that many monitors do not retry in lockstep

    def delay(self, failures: int, rand: float = 0.0, retry_after: float | None = None) -> float:
        """Seconds to wait after `failures` (≥ 1) failures in a row; `rand` in [0, 1) draws the jitter.

        A server's Retry-After is honoured when it asks for longer, up to ten times the cap.
        """
        if failures < 1:
            return 0.0
        # The exponent is bounded so that a sink down for days cannot overflow the float.
        base = min(self.maximum, self.initial * self.factor ** min(failures - 1, 64))
        delay = base * (1.0 - self.jitter * min(max(rand, 0.0), 1.0))
        if retry_after is not None and retry_after > delay:
            delay = min(retry_after, self.maximum * 10)
        return delay
