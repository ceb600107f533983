"""The alert feed: the newest flagged transactions as rows, filtered, grouped, frozen while paused.

Bounded in memory: the last `recent_size` rows, of which at most `feed_size` are shown; the model adds
each batch's fresh (de-duplicated) alerts. No Textual, no I/O.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from spark_app.formats import Alert, safe_text
from txmon_tui.monitor.grouping import AlertGroup, AlertGroups


class FeedRow(NamedTuple):
    """One flagged transaction in the feed, with its detection latency (s; None if `ts` is unreadable)."""

    alert: Alert
    latency: float | None
    received_at: float


@dataclass(frozen=True)
class FeedFilter:
    """Which feed rows to show: account/merchant are case-insensitive substrings; all given must match."""

    account: str | None = None
    merchant: str | None = None
    min_amount: float | None = None
    level: str | None = None

    def __post_init__(self) -> None:
        # Blank fields (as a form leaves them) mean "any"; normalise once, not per record. Through
        # safe_text as records are: a pasted control character is compared, and shown, as records show it.
        object.__setattr__(self, "account", safe_text(self.account).strip().lower() or None)
        object.__setattr__(self, "merchant", safe_text(self.merchant).strip().lower() or None)
        object.__setattr__(self, "level", safe_text(self.level).strip().lower() or None)

    @property
    def active(self) -> bool:
        """True when it filters anything out."""
        return any(v is not None for v in (self.account, self.merchant, self.min_amount, self.level))

    def matches(self, row: FeedRow | tuple[Alert, float | None, float]) -> bool:
        """True when the row passes every given criterion."""
        alert = row[0]
        return (
            (self.level is None or alert.level == self.level)
            and (self.min_amount is None or alert.amount >= self.min_amount)
            and (self.account is None or self.account in alert.account_id.lower())
            and (self.merchant is None or self.merchant in alert.merchant.lower())
        )


class Feed:
    """The feed's rows and groups: every recent row, those matching the filter, the view frozen by a pause."""

    def __init__(self, feed_size: int = 500, recent_size: int = 5_000) -> None:
        self.feed_size = feed_size
        self._recent: deque[tuple[Alert, float | None, float]] = deque(maxlen=recent_size)
        self._filter = FeedFilter()
        self._filtered: deque[tuple[Alert, float | None, float]] = deque(maxlen=feed_size)
        self._paused_rows: list[FeedRow] | None = None
        # The grouped view (g): every fresh alert, and those matching the filter while one is set.
        self._groups = AlertGroups()
        self._filtered_groups = AlertGroups()
        self._paused_groups: list[AlertGroup] | None = None
        self.new_while_paused = 0

    def add(self, fresh: list[Alert], latencies: list[float | None], at: float) -> None:
        """Take a batch's fresh alerts with their detection latencies, received at `at`."""
        rows = list(zip(fresh, latencies, repeat(at)))  # plain tuples; FeedRow only for rows read
        self._recent.extend(rows)
        self._groups.add(fresh)
        if self._filter.active:
            rows = [row for row in rows if self._filter.matches(row)]
            self._filtered.extend(rows)
            self._filtered_groups.add(row[0] for row in rows)
        if self._paused_rows is not None:
            self.new_while_paused += len(rows)

    @property
    def filter(self) -> FeedFilter:
        """The active feed filter."""
        return self._filter

    def set_filter(self, feed_filter: FeedFilter | None) -> None:
        """Filter the feed (None or an empty filter shows everything); rebuilt from recent rows."""
        self._filter = feed_filter or FeedFilter()
        if self._filter.active:
            matching = [row for row in self._recent if self._filter.matches(row)]
            self._filtered = deque(matching, maxlen=self.feed_size)
            # Grouped from the recent rows the filter keeps, then counted on as matching ones arrive.
            self._filtered_groups = AlertGroups.of(row[0] for row in matching)
        else:
            self._filtered.clear()
            self._filtered_groups.clear()
        if self._paused_rows is not None:
            self.pause(refreeze=True)

    @property
    def paused(self) -> bool:
        """True while the feed is frozen."""
        return self._paused_rows is not None

    def pause(self, refreeze: bool = False) -> None:
        """Freeze the feed as it is now; new rows are only counted (+N new)."""
        if self._paused_rows is None or refreeze:
            self._paused_rows = self._live_rows(self.feed_size)
            self._paused_groups = self._live_groups(self.feed_size)
            self.new_while_paused = 0

    def resume(self) -> None:
        """Unfreeze the feed, back at the newest rows."""
        self._paused_rows = None
        self._paused_groups = None
        self.new_while_paused = 0

    def toggle_pause(self) -> bool:
        """Pause or resume; return True when now paused."""
        if self.paused:
            self.resume()
        else:
            self.pause()
        return self.paused

    def _live_rows(self, limit: int) -> list[FeedRow]:
        source = self._filtered if self._filter.active else self._recent
        return list(map(FeedRow._make, itertools.islice(reversed(source), limit)))

    def rows(self, limit: int | None = None) -> list[FeedRow]:
        """The feed rows, newest first (frozen while paused), filtered, at most `limit`."""
        limit = self.feed_size if limit is None else limit
        if self._paused_rows is not None:
            return self._paused_rows[:limit]
        return self._live_rows(limit)

    def _live_groups(self, limit: int) -> list[AlertGroup]:
        return (self._filtered_groups if self._filter.active else self._groups).newest(limit)

    def groups(self, limit: int | None = None) -> list[AlertGroup]:
        """The feed by (account, level, rule), latest updated first (frozen while paused, filtered)."""
        limit = self.feed_size if limit is None else limit
        if self._paused_groups is not None:
            return self._paused_groups[:limit]
        return self._live_groups(limit)

    def account_rows(self, account_id: str, limit: int = 20) -> list[FeedRow]:
        """That account's recent flagged transactions, newest first (from the last `recent_size`)."""
        found = (row for row in reversed(self._recent) if row[0].account_id == account_id)
        return list(map(FeedRow._make, itertools.islice(found, limit)))
