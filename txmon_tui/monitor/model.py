"""The monitor's state, updated per batch from Kafka and the supervisor, read at repaint time.

Aggregates on arrival: per record only O(1) work (dedupe, one latency, one bin, one feed row); every
figure the screen shows is a field or a small computation over bounded windows. No Textual, no I/O.
"""

from __future__ import annotations

import operator
import time
from collections import Counter
from collections.abc import Iterable

from spark_app.formats import (
    DEFAULT_ALERT_THRESHOLD,
    DEFAULT_LARGE_THRESHOLD,
    LEVEL_ALERT,
    LEVEL_LARGE,
    LEVEL_PATTERN,
    LEVEL_VELOCITY,
    QUERY_ALERTS,
    QUERY_PARQUET,
    RULE_LEVELS,
    Alert,
    BatchMetrics,
)
from txmon_tui.monitor import health
from txmon_tui.monitor.feed import Feed, FeedFilter, FeedRow
from txmon_tui.monitor.grouping import AlertGroup
from txmon_tui.monitor.health import HealthInputs, HealthRules, ProcessHealth
from txmon_tui.monitor.snapshot import Snapshot
from txmon_tui.monitor.stats import (
    AmountBins,
    AmountHistogram,
    Dedupe,
    LatencyWindow,
    RateMeter,
    Series,
    TimestampParser,
    TotalRate,
)
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.children import ProcessView, ProcState, describe_exit

# Spark runs no batch while no data arrives, so its last reported rates go stale: after this, show 0.
SPARK_RATES_STALE_AFTER = 5.0
SPARKLINES = ("produced", "input", "processed", "flagged", "alerts", "dead_letters", "backlog",
              "batch_ms", "latency_p99")

_TX_ID = operator.attrgetter("tx_id")
_TS = operator.attrgetter("ts")
_DETECTED_AT = operator.attrgetter("detected_at")
_LEVEL = operator.attrgetter("level")
_AMOUNT = operator.attrgetter("amount")


class MonitorModel:
    """Counters, rates, latency, bins, sparklines and warnings; the alert feed's rows in a Feed."""

    def __init__(
        self,
        large_threshold: float = DEFAULT_LARGE_THRESHOLD,
        alert_threshold: float = DEFAULT_ALERT_THRESHOLD,
        feed_size: int = 500,
        recent_size: int = 5_000,
        bins: int = 25,
        live_window: float = 60.0,
        sparkline_seconds: int = 180,
        dedupe_capacity: int = 200_000,
        rules: HealthRules | None = None,
        now: float | None = None,
    ) -> None:
        self.large_threshold = large_threshold
        self.alert_threshold = alert_threshold
        self.feed_size = feed_size
        self.rules = rules or HealthRules()
        # Bins from the large threshold to 500 past it (500..1000 by default), overflow in the last.
        self._bins = AmountBins(large_threshold, max(alert_threshold, large_threshold) + 100.0, bins)
        self._live_window = live_window
        self._sparkline_seconds = sparkline_seconds
        self._dedupe = Dedupe(dedupe_capacity)
        self._metrics_seen = Dedupe(10_000)
        self._ts = TimestampParser()
        self._feed = Feed(feed_size, recent_size)
        self._produced = TotalRate()
        self._processes: dict[str, ProcessView] = {}
        self.brokers: int | None = None  # brokers in the cluster's metadata, as last read
        self.brokers_seen: int | None = None  # the most at once: fewer now means some are down
        self._spark_running_since: float | None = None
        self._reset(time.time() if now is None else now)

    def _reset(self, now: float) -> None:
        """Zero every counter and window (the feed and the dedupe memory stay)."""
        self.watching_since = now
        self.processed = self.flagged = self.dead_letters = self.parquet_rows = 0
        self.alerts = self.alerts_large = self.alerts_alert = self.alerts_rule = 0
        self.duplicates = self.undecodable = self.batches = 0
        latest = self._produced.latest
        self._produced_baseline: int | None = latest
        self._flagged_meter = RateMeter()
        self._alerts_meter = RateMeter()
        self._dead_meter = RateMeter()
        self._latency = LatencyWindow(max_age=self._live_window)
        self._to_batch = LatencyWindow(max_age=self._live_window)
        self._batch_to_here = LatencyWindow(max_age=self._live_window)
        self.histogram = AmountHistogram(self._bins, window=self._live_window)
        self._series = {name: Series(self._sparkline_seconds) for name in SPARKLINES}
        self._input_rate = self._processed_rate = 0.0
        self._batch_duration_ms: int | None = None
        self._spark_offset: int | None = getattr(self, "_spark_offset", None)
        self._last_alerts_metrics_at: float | None = None
        self._last_input_at: float | None = None
        self._last_flagged_at: float | None = None
        self._last_parquet_at: float | None = None
        self._lagging = 0
        self._producing_since: float | None = None
        self._broker_unreachable_since: float | None = getattr(self, "_broker_unreachable_since", None)

    def clear(self, now: float | None = None) -> None:
        """Reset counters, rates, bins, latency and sparklines (the `c` key); the feed stays."""
        self._reset(time.time() if now is None else now)

    # --- inputs -----------------------------------------------------------------------------------

    def apply(self, batch: TailBatch) -> None:
        """Take one batch from the tail: dedupe alerts, update counters, bins, latency, feed, metrics."""
        at = batch.received_at or time.time()
        self.undecodable += batch.undecodable
        if batch.alerts:
            self._apply_alerts(batch.alerts, at, past=batch.backfill is not None)
        for metrics in batch.metrics:
            self._apply_metrics(metrics, at)

    def _apply_alerts(self, alerts: list[Alert], at: float, past: bool = False) -> None:
        # Per record only C-level loops (attrgetter, zip, Counter) and two tight Python loops (dedupe,
        # timestamps): 5,000 alerts cost a few ms.
        fresh = self._dedupe.fresh(alerts, _TX_ID)
        self.duplicates += len(alerts) - len(fresh)
        if not fresh:
            return
        # A backfill's alerts were detected long ago: no detection latency, not the live one's figures.
        latencies = [None] * len(fresh) if past else [
            None if sent is None else at - sent for sent in self._ts.epochs(map(_TS, fresh))]
        levels = Counter(map(_LEVEL, fresh))
        self.alerts += len(fresh)
        self.alerts_large += levels[LEVEL_LARGE]
        self.alerts_alert += levels[LEVEL_ALERT]
        self._alerts_meter.add(len(fresh), at)
        self._latency.add([value for value in latencies if value is not None], at)
        self._split(fresh, at)
        # A rule alert repeats the amount of the transaction that completed it, which arrives as a
        # large/alert of its own: the histogram counts each transaction once.
        rules = levels[LEVEL_VELOCITY] + levels[LEVEL_PATTERN]
        self.alerts_rule += rules
        self.histogram.add(map(_AMOUNT, fresh if not rules else
                               (a for a in fresh if a.level not in RULE_LEVELS)), at)
        self._feed.add(fresh, latencies, at)

    def _split(self, fresh: list[Alert], at: float) -> None:
        # The two stages of the latency, from the job's own stamp of its batch start (`detected_at`).
        # A foreign record may lack detected_at: "" reads as unknown.
        detected = self._ts.epochs(d if isinstance(d, str) else "" for d in map(_DETECTED_AT, fresh))
        to_batch, batch_to_here = [], []
        for sent, batch in zip(self._ts.epochs(map(_TS, fresh)), detected, strict=True):
            if batch is not None:
                batch_to_here.append(at - batch)
                if sent is not None:
                    to_batch.append(batch - sent)
        self._to_batch.add(to_batch, at)
        self._batch_to_here.add(batch_to_here, at)

    def _apply_metrics(self, metrics: BatchMetrics, at: float) -> None:
        # The metrics topic is at-least-once too, and a batch re-run after a restart from the checkpoint
        # reports again (another timestamp): one count per (query id, batch id). A fresh checkpoint is a
        # new query id whose batch ids start again at 0. Older records have no query id: by timestamp.
        key = ((metrics.query_id, metrics.query, metrics.batch_id) if metrics.query_id
               else (metrics.query, metrics.batch_id, metrics.timestamp))
        if not self._metrics_seen.first_time(key):
            return
        flagged = metrics.large + metrics.alerts
        if metrics.query == QUERY_ALERTS:
            self.batches += 1
            self.processed += metrics.num_input_rows
            self.flagged += flagged
            self.dead_letters += metrics.dead_letters
            self._flagged_meter.add(flagged, at)
            self._dead_meter.add(metrics.dead_letters, at)
            self._input_rate = metrics.input_rows_per_second
            self._processed_rate = metrics.processed_rows_per_second
            self._batch_duration_ms = metrics.batch_duration_ms
            if metrics.end_offsets:
                self._spark_offset = sum(metrics.end_offsets.values())
            self._last_alerts_metrics_at = at
            if metrics.num_input_rows > 0:
                self._last_input_at = at
            if flagged > 0:
                self._last_flagged_at = at
            lagging = metrics.num_input_rows > 0 and (
                metrics.input_rows_per_second > metrics.processed_rows_per_second * self.rules.lag_margin
            )
            self._lagging = self._lagging + 1 if lagging else 0
        elif metrics.query == QUERY_PARQUET:
            self.parquet_rows += flagged
            self._last_parquet_at = at

    def apply_produced(self, total: int | None, at: float) -> None:
        """Take the `transactions` end-offset total (None: the broker did not answer)."""
        if total is None:
            if self._broker_unreachable_since is None:
                self._broker_unreachable_since = at
            return
        self._broker_unreachable_since = None
        if self._produced_baseline is None:
            self._produced_baseline = total
        self._produced.add(total, at)
        if self._produced.rate() > 0:
            if self._producing_since is None:
                self._producing_since = at
        else:
            self._producing_since = None

    def apply_brokers(self, count: int) -> None:
        """Take the number of brokers the cluster's metadata lists now."""
        self.brokers = count
        self.brokers_seen = max(count, self.brokers_seen or 0)

    def apply_processes(self, views: Iterable[ProcessView], at: float | None = None) -> None:
        """Take the supervised processes' states (broker, producer, spark) for the health rules."""
        now = time.time() if at is None else at
        self._processes = {view.name: view for view in views}
        spark = self._processes.get("spark")
        if spark is not None and spark.state is ProcState.RUNNING:
            if self._spark_running_since is None:
                self._spark_running_since = now
        else:
            self._spark_running_since = None

    # --- the feed (txmon_tui.monitor.feed) --------------------------------------------------------

    @property
    def filter(self) -> FeedFilter:
        """The active feed filter."""
        return self._feed.filter

    def set_filter(self, feed_filter: FeedFilter | None) -> None:
        """Filter the feed (None or an empty filter shows everything)."""
        self._feed.set_filter(feed_filter)

    @property
    def paused(self) -> bool:
        """True while the feed is frozen."""
        return self._feed.paused

    @property
    def new_while_paused(self) -> int:
        """Rows that arrived (and match the filter) since the feed was paused."""
        return self._feed.new_while_paused

    def pause(self) -> None:
        """Freeze the feed as it is now; new rows are only counted (+N new)."""
        self._feed.pause()

    def resume(self) -> None:
        """Unfreeze the feed, back at the newest rows."""
        self._feed.resume()

    def toggle_pause(self) -> bool:
        """Pause or resume; return True when now paused."""
        return self._feed.toggle_pause()

    def feed(self, limit: int | None = None) -> list[FeedRow]:
        """The feed rows, newest first (frozen while paused), filtered, at most `limit`."""
        return self._feed.rows(limit)

    def groups(self, limit: int | None = None) -> list[AlertGroup]:
        """The feed by (account, level, rule), latest updated first (frozen while paused, filtered)."""
        return self._feed.groups(limit)

    def account_rows(self, account_id: str, limit: int = 20) -> list[FeedRow]:
        """That account's recent flagged transactions, newest first."""
        return self._feed.account_rows(account_id, limit)

    # --- reading ----------------------------------------------------------------------------------

    @property
    def produced(self) -> int:
        """Transactions produced since start (end-offset growth), whoever produced them."""
        latest = self._produced.latest
        if latest is None or self._produced_baseline is None:
            return 0
        return max(latest - self._produced_baseline, 0)

    @property
    def backlog(self) -> int | None:
        """Transactions in the topic that the alerts query has not processed yet."""
        latest = self._produced.latest
        if latest is None or self._spark_offset is None:
            return None
        return max(latest - self._spark_offset, 0)

    def _process_health(self, name: str) -> ProcessHealth | None:
        view = self._processes.get(name)
        if view is None:
            return None
        exit_text = describe_exit(view.exit_code) if view.exit_code is not None else None
        return ProcessHealth(view.state, exit_text, view.last_error)

    def health_inputs(self, now: float) -> HealthInputs:
        """The numbers the health rules look at."""
        producing_since = self._producing_since
        if producing_since is not None and self._spark_running_since is not None:
            producing_since = max(producing_since, self._spark_running_since)  # a fresh job gets its grace
        return HealthInputs(
            now=now,
            producing_since=producing_since,
            last_input_at=self._last_input_at,
            lagging_batches=self._lagging,
            input_rate=self._input_rate,
            processed_rate=self._processed_rate,
            backlog=self.backlog,
            last_flagged_at=self._last_flagged_at,
            last_parquet_at=self._last_parquet_at,
            watching_since=max(self.watching_since, self._spark_running_since or self.watching_since),
            broker_unreachable_since=self._broker_unreachable_since,
            brokers=self.brokers,
            brokers_seen=self.brokers_seen,
            broker=self._process_health("broker"),
            producer=self._process_health("producer"),
            spark=self._process_health("spark"),
        )

    def warnings(self, now: float) -> list[str]:
        """Plain-language warnings right now."""
        return health.warnings(self.health_inputs(now), self.rules)

    def snapshot(self, now: float | None = None) -> Snapshot:
        """Every figure for one repaint; also records this second's sparkline samples."""
        now = time.time() if now is None else now
        fresh = self._last_alerts_metrics_at is not None and now - self._last_alerts_metrics_at <= (
            SPARK_RATES_STALE_AFTER
        )
        input_rate = self._input_rate if fresh else 0.0
        processed_rate = self._processed_rate if fresh else 0.0
        produced_rate = self._produced.rate(now)
        flagged_rate = self._flagged_meter.rate(now)
        alerts_rate = self._alerts_meter.rate(now)
        dead_rate = self._dead_meter.rate(now)
        p50 = self._latency.percentile(50, now)
        p99 = self._latency.percentile(99, now)
        to_batch = (self._to_batch.percentile(50, now), self._to_batch.percentile(99, now))
        batch_to_here = (self._batch_to_here.percentile(50, now), self._batch_to_here.percentile(99, now))
        backlog = self.backlog
        samples = {
            "produced": produced_rate, "input": input_rate, "processed": processed_rate,
            "flagged": flagged_rate, "alerts": alerts_rate, "dead_letters": dead_rate,
            "backlog": float(backlog or 0), "batch_ms": float(self._batch_duration_ms or 0) if fresh else 0.0,
            "latency_p99": p99 or 0.0,
        }
        for name, value in samples.items():
            self._series[name].record(value, now)
        return Snapshot(
            at=now,
            produced=self.produced,
            processed=self.processed,
            flagged=self.flagged,
            alerts=self.alerts,
            alerts_large=self.alerts_large,
            alerts_alert=self.alerts_alert,
            alerts_rule=self.alerts_rule,
            dead_letters=self.dead_letters,
            parquet_rows=self.parquet_rows,
            duplicates=self.duplicates,
            undecodable=self.undecodable,
            batches=self.batches,
            produced_rate=produced_rate,
            input_rate=input_rate,
            processed_rate=processed_rate,
            flagged_rate=flagged_rate,
            alerts_rate=alerts_rate,
            dead_letter_rate=dead_rate,
            batch_duration_ms=self._batch_duration_ms,
            backlog=backlog,
            latency_p50=p50,
            latency_p99=p99,
            to_batch=to_batch,
            batch_to_here=batch_to_here,
            bin_edges=self._bins.edges,
            live_bins=self.histogram.live_counts(now),
            total_bins=list(self.histogram.total),
            sparklines={name: series.values for name, series in self._series.items()},
            funnel=health.funnel(self.produced, self.processed, self.flagged, self.alerts, self.parquet_rows),
            warnings=self.warnings(now),
            paused=self.paused,
            new_while_paused=self.new_while_paused,
            broker_reachable=self._broker_unreachable_since is None,
            brokers=self.brokers,
        )
