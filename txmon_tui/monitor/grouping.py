"""Alerts grouped by account and rule: one row per (account, level, rule) with a count, bounded in memory.

No Textual, no I/O: the model feeds it fresh (de-duplicated) alerts per batch, the screen reads the rows.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from spark_app.formats import Alert

DEFAULT_CAPACITY = 5_000  # groups kept; beyond it the one updated longest ago is dropped

GroupKey = tuple[str, str, str]  # (account_id, level, rule)


@dataclass(slots=True)
class AlertGroup:
    """Every alert seen of one account under one level and rule: how many, when, the largest amount."""

    account_id: str
    level: str
    rule: str
    count: int
    first_seen: str  # the earliest event time (`ts`, ISO 8601 UTC) among them
    last_seen: str  # the latest event time among them
    max_amount: float
    currency: str
    last_tx_id: str  # the newest arrival, for the details view

    @property
    def key(self) -> GroupKey:
        """What the group is keyed by."""
        return (self.account_id, self.level, self.rule)


class AlertGroups:
    """Groups kept in order of their latest arrival; at most `capacity` of them (the stalest go first)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.evicted = 0  # groups dropped to stay within capacity
        self._groups: OrderedDict[GroupKey, AlertGroup] = OrderedDict()

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, alerts: Iterable[Alert]) -> None:
        """Count fresh alerts (the caller drops repeats) into their groups."""
        groups = self._groups
        touch = groups.move_to_end
        for alert in alerts:
            # The rule may be null on a foreign record: group it under an empty rule rather than fail.
            key = (alert.account_id or "", alert.level, alert.rule or "")
            group = groups.get(key)
            if group is None:
                groups[key] = AlertGroup(key[0], key[1], key[2], 1, alert.ts, alert.ts, alert.amount,
                                         alert.currency or "", alert.tx_id)
                if len(groups) > self.capacity:
                    groups.popitem(last=False)
                    self.evicted += 1
                continue
            group.count += 1
            # ISO 8601 UTC times of one format compare correctly as text.
            if alert.ts < group.first_seen:
                group.first_seen = alert.ts
            if alert.ts > group.last_seen:
                group.last_seen = alert.ts
            if alert.amount > group.max_amount:
                group.max_amount = alert.amount
            group.last_tx_id = alert.tx_id
            touch(key)

    def newest(self, limit: int | None = None) -> list[AlertGroup]:
        """Copies of the groups, the one updated most recently first, at most `limit`."""
        found = itertools.islice(reversed(self._groups.values()), limit)
        return [AlertGroup(g.account_id, g.level, g.rule, g.count, g.first_seen, g.last_seen, g.max_amount,
                           g.currency, g.last_tx_id) for g in found]

    def clear(self) -> None:
        """Forget every group."""
        self._groups.clear()
        self.evicted = 0

    @classmethod
    def of(cls, alerts: Iterable[Alert], capacity: int = DEFAULT_CAPACITY) -> AlertGroups:
        """Groups of the given alerts, in their order."""
        groups = cls(capacity)
        groups.add(alerts)
        return groups
