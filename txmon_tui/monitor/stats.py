"""Pure, incremental statistics for the monitor: rates, latency percentiles, amount bins, dedupe, series.

Everything here is updated per batch with O(1) work per record and read at repaint time; no I/O, no
clock of its own (callers pass the time), no Textual.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TypeVar

T = TypeVar("T")
_HASH_MASK = (1 << 60) - 1  # 60 bits: a CPython int of two digits, 32 bytes


class RateMeter:
    """Events per second over a sliding window, kept as per-second buckets."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._buckets: deque[list[float]] = deque()  # [second, count], oldest first
        self._sum = 0.0

    def add(self, count: float, at: float) -> None:
        """Count `count` events that happened at `at` (seconds)."""
        second = math.floor(at)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([second, count])
        self._sum += count
        self._expire(at)

    def _expire(self, now: float) -> None:
        oldest = math.floor(now - self.window)
        while self._buckets and self._buckets[0][0] <= oldest:
            self._sum -= self._buckets.popleft()[1]

    def rate(self, now: float) -> float:
        """Events per second over the last `window` seconds."""
        self._expire(now)
        return max(self._sum, 0.0) / self.window

    def clear(self) -> None:
        """Forget every event."""
        self._buckets.clear()
        self._sum = 0.0


class TotalRate:
    """The rate of a growing total (e.g. a topic's end offset), from samples at least `span` s apart."""

    def __init__(self, span: float = 1.0, keep: float = 5.0) -> None:
        self.span = span
        self.keep = keep
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, total: int, at: float) -> None:
        """Record the total seen at `at`."""
        self._samples.append((at, total))
        while len(self._samples) > 2 and self._samples[1][0] <= at - self.keep:
            self._samples.popleft()

    def rate(self, now: float | None = None) -> float:
        """Units per second between the newest sample and the newest one at least `span` older."""
        if len(self._samples) < 2:
            return 0.0
        newest_at, newest = self._samples[-1]
        if now is not None and now - newest_at > self.keep:
            return 0.0  # no samples lately: report nothing rather than a stale rate
        reference = self._samples[0]
        for sample in reversed(self._samples):
            if sample[0] <= newest_at - self.span:
                reference = sample
                break
        elapsed = newest_at - reference[0]
        return max(newest - reference[1], 0) / elapsed if elapsed > 0 else 0.0

    @property
    def latest(self) -> int | None:
        """The newest total, or None before the first sample."""
        return self._samples[-1][1] if self._samples else None

    def clear(self) -> None:
        """Forget every sample."""
        self._samples.clear()


class LatencyWindow:
    """Latencies of the last `max_age` seconds (at most `max_samples`), with cached percentiles."""

    def __init__(self, max_samples: int = 10_000, max_age: float = 60.0) -> None:
        self.max_samples = max_samples
        self.max_age = max_age
        self._chunks: deque[tuple[float, list[float]]] = deque()  # one chunk per batch, oldest first
        self._count = 0
        self._sorted: list[float] | None = None

    def add(self, latencies: Sequence[float], at: float) -> None:
        """Add one batch's latencies (seconds), received at `at`."""
        if not latencies:
            return
        chunk = list(latencies[-self.max_samples :])
        self._chunks.append((at, chunk))
        self._count += len(chunk)
        self._sorted = None
        # Trim whole chunks first, then the head of the oldest, so memory stays bounded.
        while self._count - len(self._chunks[0][1]) >= self.max_samples:
            self._count -= len(self._chunks.popleft()[1])
        excess = self._count - self.max_samples
        if excess > 0:
            del self._chunks[0][1][:excess]
            self._count -= excess

    def _expire(self, now: float) -> None:
        while self._chunks and self._chunks[0][0] < now - self.max_age:
            self._count -= len(self._chunks.popleft()[1])
            self._sorted = None

    def percentile(self, q: float, now: float) -> float | None:
        """The q-th percentile (0..100, nearest rank) of the window, or None when it is empty."""
        self._expire(now)
        if self._count == 0:
            return None
        if self._sorted is None:
            self._sorted = sorted(value for _, chunk in self._chunks for value in chunk)
        rank = max(math.ceil(q / 100.0 * len(self._sorted)), 1)
        return self._sorted[rank - 1]

    def __len__(self) -> int:
        return self._count

    def clear(self) -> None:
        """Forget every sample."""
        self._chunks.clear()
        self._count = 0
        self._sorted = None


class AmountBins:
    """Fixed equal-width bins over [low, high); values below go in the first, above in the last bin."""

    def __init__(self, low: float = 500.0, high: float = 1000.0, bins: int = 25) -> None:
        if not high > low or bins < 1:
            raise ValueError(f"need low < high and bins >= 1, got {low}, {high}, {bins}")
        self.low = low
        self.high = high
        self.bins = bins
        self._scale = bins / (high - low)

    @property
    def edges(self) -> list[float]:
        """The bins + 1 edges, low to high."""
        width = (self.high - self.low) / self.bins
        return [self.low + i * width for i in range(self.bins + 1)]

    def index(self, amount: float) -> int:
        """The bin of one amount."""
        i = int((amount - self.low) * self._scale)
        return 0 if i < 0 else (self.bins - 1 if i >= self.bins else i)

    def count(self, amounts: Iterable[float]) -> list[int]:
        """Counts per bin of some amounts."""
        counts = [0] * self.bins
        low, scale, last = self.low, self._scale, self.bins - 1
        for amount in amounts:
            i = int((amount - low) * scale)  # the body of index(), inlined: this runs per record
            counts[0 if i < 0 else (last if i > last else i)] += 1
        return counts


class AmountHistogram:
    """Bin counts since start and over the last `window` seconds (per-second slots, subtracted on expiry)."""

    def __init__(self, bins: AmountBins | None = None, window: float = 60.0) -> None:
        self.spec = bins or AmountBins()
        self.window = window
        self.total = [0] * self.spec.bins
        self.live = [0] * self.spec.bins
        self._slots: deque[tuple[int, list[int]]] = deque()

    def add(self, amounts: Iterable[float], at: float) -> None:
        """Add one batch's amounts, received at `at`."""
        counts = self.spec.count(amounts)
        second = math.floor(at)
        if self._slots and self._slots[-1][0] == second:
            slot = self._slots[-1][1]
        else:
            slot = [0] * self.spec.bins
            self._slots.append((second, slot))
        for i, n in enumerate(counts):
            if n:
                slot[i] += n
                self.live[i] += n
                self.total[i] += n
        self._expire(at)

    def _expire(self, now: float) -> None:
        oldest = math.floor(now - self.window)
        while self._slots and self._slots[0][0] <= oldest:
            for i, n in enumerate(self._slots.popleft()[1]):
                self.live[i] -= n

    def live_counts(self, now: float) -> list[int]:
        """Counts per bin over the last `window` seconds."""
        self._expire(now)
        return list(self.live)

    def clear(self) -> None:
        """Forget every amount."""
        self.total = [0] * self.spec.bins
        self.live = [0] * self.spec.bins
        self._slots.clear()


class Dedupe:
    """Remembers the last `capacity` keys (FIFO), so repeats within that horizon are recognised.

    Keys are kept as 60-bit hashes in a set and a ring of machine integers: ~60 bytes a key whatever its
    size (a `tx_id` string kept as is costs ~150). Two different keys share a hash with odds of about
    capacity / 2**60 per key: 2e-13 at 200,000.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._seen: set[int] = set()
        self._ring = array("q", bytes(8 * capacity))  # the remembered hashes, oldest first from _next - _size
        self._next = 0  # where the next fresh hash goes
        self._size = 0

    def first_time(self, key: Hashable) -> bool:
        """True the first time `key` is offered (and remember it); False for a repeat."""
        digest = hash(key) & _HASH_MASK
        if digest in self._seen:
            return False
        self._remember([digest])
        return True

    def fresh(self, items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
        """The items whose key is offered for the first time (repeats within `items` too), in order."""
        items = list(items)
        digests = [hash(k) & _HASH_MASK for k in map(key, items)]
        distinct = set(digests)
        if len(distinct) == len(digests) and self._seen.isdisjoint(distinct):
            self._remember(digests)  # the usual batch: all new, and no Python work per record beyond hashing
            return items
        known, batch = self._seen, set()
        kept: list[T] = []
        fresh: list[int] = []
        for item, digest in zip(items, digests, strict=True):
            if digest not in known and digest not in batch:
                batch.add(digest)
                kept.append(item)
                fresh.append(digest)
        self._remember(fresh)
        return kept

    def _remember(self, digests: list[int]) -> None:
        """Add hashes not yet remembered, forgetting the oldest beyond `capacity` (slices, not a loop)."""
        capacity = self.capacity
        if len(digests) >= capacity:
            kept = digests[-capacity:]
            self._seen = set(kept)
            self._ring = array("q", kept)
            self._next, self._size = 0, capacity
            return
        free = capacity - self._size
        if len(digests) > free:  # overwrite the oldest: forget them first
            self._seen.difference_update(self._take((self._next + free) % capacity, len(digests) - free))
        self._put(self._next, array("q", digests))
        self._seen.update(digests)
        self._next = (self._next + len(digests)) % capacity
        self._size = min(capacity, self._size + len(digests))

    def _take(self, start: int, count: int) -> array[int]:
        end = start + count
        if end <= self.capacity:
            return self._ring[start:end]
        return self._ring[start:] + self._ring[: end - self.capacity]

    def _put(self, start: int, values: array[int]) -> None:
        split = self.capacity - start
        if len(values) <= split:
            self._ring[start : start + len(values)] = values
        else:
            self._ring[start:] = values[:split]
            self._ring[: len(values) - split] = values[split:]

    def __len__(self) -> int:
        return self._size


class Series:
    """One sample per second for the last `length` seconds (a sparkline's data)."""

    def __init__(self, length: int = 180) -> None:
        self.length = length
        self._values: deque[float] = deque(maxlen=length)
        self._last_second: int | None = None

    def record(self, value: float, at: float) -> None:
        """Record the value for the second of `at`; seconds skipped since the last call repeat it."""
        second = math.floor(at)
        if self._last_second is None:
            self._values.append(value)
        elif second > self._last_second:
            for _ in range(min(second - self._last_second, self.length)):
                self._values.append(value)
        elif self._values:
            self._values[-1] = value  # same second: keep the newest value
        self._last_second = second if self._last_second is None else max(second, self._last_second)

    @property
    def values(self) -> list[float]:
        """Samples, oldest first."""
        return list(self._values)

    def clear(self) -> None:
        """Forget every sample."""
        self._values.clear()
        self._last_second = None


class TimestampParser:
    """Epoch seconds from wire timestamps (`2026-11-25T12:00:00.123Z`), caching the per-second part.

    `datetime.strptime` costs ~10 µs; transactions of one batch share a few seconds, so the cached
    path costs a dict lookup and a slice.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self.cache_size = cache_size
        self._seconds: dict[str, float] = {}

    def epochs(self, stamps: Iterable[str]) -> list[float | None]:
        """epoch() of many timestamps, with the cached path inlined (it runs per record)."""
        cached = self._seconds.get
        slow = self.epoch
        result: list[float | None] = []
        append = result.append
        for ts in stamps:
            base = cached(ts[:19])
            if base is not None and len(ts) == 24 and ts[19] == ".":
                try:
                    append(base + int(ts[20:23]) / 1000.0)
                    continue
                except ValueError:
                    pass
            append(slow(ts))
        return result

    def epoch(self, ts: str) -> float | None:
        """Seconds since the epoch, or None when `ts` is not in the wire format."""
        head = ts[:19]
        base = self._seconds.get(head)
        if base is None:
            try:
                base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
            except ValueError:
                return None
            if len(self._seconds) >= self.cache_size:
                self._seconds.clear()
            self._seconds[head] = base
        fraction = ts[19:].rstrip("Z")
        if not fraction:
            return base
        try:
            return base + float(fraction)
        except ValueError:
            return None
