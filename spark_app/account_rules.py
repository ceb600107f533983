"""The per-account rule state machine: velocity and small-then-large, in plain Python.

The Spark job keeps one AccountState per account in its state store (encoded as compact JSON, so that
the state can grow fields without a state-schema change) and feeds it each micro-batch's transactions
of that account. No pyspark here: the rules are tested without a JVM.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from txmon_core.records.alert import LEVEL_PATTERN, LEVEL_VELOCITY, rule_alert_id
from txmon_core.rules import RuleSettings


@dataclass(frozen=True, slots=True)
class Event:
    """One valid transaction that matters to the rules (flagged or small), with its event time in ms."""

    tx_id: str
    ts_ms: int
    amount: float
    merchant: str | None = None
    currency: str | None = None
    ts: str | None = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired: its level, its transactions (oldest first) and the one that completed it."""

    level: str
    tx_ids: tuple[str, ...]
    trigger: Event

    @property
    def alert_id(self) -> str:
        """The alert's stable id (and Kafka key)."""
        return rule_alert_id(self.level, self.trigger.tx_id)


@dataclass
class AccountState:
    """What one account's rules remember between micro-batches; bounded by the velocity count.

    `flagged` holds the newest velocity_count - 1 flagged transactions as [ts_ms, tx_id], oldest first;
    `velocity_at` the event time that ended the last velocity window that raised an alert; `small` the
    newest small transaction not yet followed by a large one; `newest_ms` the newest event time seen.
    """

    flagged: list[tuple[int, str]] = field(default_factory=list)
    velocity_at: int | None = None
    small: tuple[int, str] | None = None
    newest_ms: int | None = None

    def encode(self) -> str:
        """Compact JSON, as the state store keeps it."""
        return orjson.dumps(
            {"f": self.flagged, "v": self.velocity_at, "s": self.small, "n": self.newest_ms}
        ).decode()

    @classmethod
    def decode(cls, text: str | None) -> AccountState:
        """The state `encode` wrote; a fresh state for None."""
        if text is None:
            return cls()
        data = orjson.loads(text)
        small = data.get("s")
        return cls(
            flagged=[(int(ts), str(tx)) for ts, tx in data.get("f", [])],
            velocity_at=data.get("v"),
            small=None if small is None else (int(small[0]), str(small[1])),
            newest_ms=data.get("n"),
        )


class AccountRules:
    """Applies the rules to one account's events, updating its AccountState; returns the hits."""

    def __init__(self, settings: RuleSettings, large_threshold: float) -> None:
        self.settings = settings
        self.large_threshold = large_threshold
        self.velocity_ms = round(settings.velocity_window * 1000)
        self.pattern_ms = round(settings.pattern_window * 1000)

    def is_flagged(self, event: Event) -> bool:
        """Above the large threshold (strictly), as the alerts query flags it."""
        return event.amount > self.large_threshold

    def is_small(self, event: Event) -> bool:
        """Under the small amount (strictly): the first half of a card test."""
        return event.amount < self.settings.small_amount

    def matters(self, event: Event) -> bool:
        """True when the event can take part in a rule."""
        return self.is_flagged(event) or self.is_small(event)

    def process(self, state: AccountState, events: Iterable[Event]) -> list[RuleHit]:
        """Apply a batch of events in event-time order (a small one before a large one of the same ms)."""
        ordered = sorted(events, key=lambda e: (e.ts_ms, not self.is_small(e), e.tx_id))
        hits: list[RuleHit] = []
        for event in ordered:
            hits.extend(self.observe(state, event))
        return hits

    def observe(self, state: AccountState, event: Event) -> list[RuleHit]:
        """Apply one event."""
        state.newest_ms = event.ts_ms if state.newest_ms is None else max(state.newest_ms, event.ts_ms)
        if self.is_small(event):
            # The newest small transaction gives a following large one the most time to match.
            if state.small is None or event.ts_ms >= state.small[0]:
                state.small = (event.ts_ms, event.tx_id)
            return []
        if not self.is_flagged(event):
            return []
        hits = []
        velocity = self._velocity(state, event)
        if velocity is not None:
            hits.append(velocity)
        pattern = self._pattern(state, event)
        if pattern is not None:
            hits.append(pattern)
        return hits

    def _velocity(self, state: AccountState, event: Event) -> RuleHit | None:
        count = self.settings.velocity_count
        entry = (event.ts_ms, event.tx_id)
        if any(tx == event.tx_id for _, tx in state.flagged):
            return None  # the same transaction twice (a replayed record) counts once
        entries = list(state.flagged)
        bisect.insort(entries, entry)
        # Keep only what a later transaction can still need: the newest count - 1.
        state.flagged = entries[-(count - 1):] if count > 1 else []
        at = entries.index(entry)
        # Every run of `count` consecutive transactions that includes this one, newest window first.
        for start in range(min(at, len(entries) - count), max(-1, at - count), -1):
            window = entries[start:start + count]
            if len(window) < count or window[-1][0] - window[0][0] > self.velocity_ms:
                continue
            end = window[-1][0]
            if state.velocity_at is not None and abs(end - state.velocity_at) < self.velocity_ms:
                return None  # once per window: this account already alerted within it
            state.velocity_at = end if state.velocity_at is None else max(state.velocity_at, end)
            return RuleHit(LEVEL_VELOCITY, tuple(tx for _, tx in window), event)
        return None

    def _pattern(self, state: AccountState, event: Event) -> RuleHit | None:
        small = state.small
        if small is None or not small[0] <= event.ts_ms <= small[0] + self.pattern_ms:
            return None
        state.small = None  # one alert per card test
        return RuleHit(LEVEL_PATTERN, (small[1], event.tx_id), event)

    def expires_at(self, state: AccountState) -> int:
        """The event time (ms) after which the state can no longer matter and may be dropped."""
        newest = state.newest_ms or 0
        return newest + max(self.velocity_ms, self.pattern_ms) + 1
