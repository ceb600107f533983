"""Unit tests of the monitor model: dedupe, feed, pause/+N, filter, counters, bins, latency, metrics."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import orjson
import pytest

from producer.transaction import format_ts
from spark_app.formats import QUERY_ALERTS, QUERY_PARQUET, Alert, BatchMetrics, decode_metrics, encode_metrics
from txmon_tui.monitor.feed import FeedFilter
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.children import ProcessView, ProcState

T0 = 1_795_608_000.0  # 2026-11-25T12:00:00Z


def alert(n: int, amount: float = 600.0, account: str = "RO00ACCT1", merchant: str = "Mega Image",
          sent: float = T0) -> Alert:
    """A flagged transaction whose level follows the default thresholds."""
    level = "alert" if amount > 900 else "large"
    return Alert(f"tx-{n}", account, merchant, amount, "RON", format_ts(int(sent * 1000)), level,
                 "amount>900" if level == "alert" else "amount>500", format_ts(int(sent * 1000)))


def metrics(
    batch_id: int, query: str = QUERY_ALERTS, rows: int = 100, large: int = 8, alerts: int = 2,
    dead: int = 1, offset: int = 100, rate_in: float = 1000.0, rate_out: float = 2000.0,
) -> BatchMetrics:
    """One progress record."""
    stamp = f"2026-11-25T12:00:{batch_id:02d}.000Z"
    return BatchMetrics(query, batch_id, stamp, rows, rate_in, rate_out, 150, {"0": offset},
                        large, alerts, dead)


def batch(alerts: Sequence[Alert] = (), metric_list: Sequence[BatchMetrics] = (), at: float = T0 + 0.25,
          undecodable: int = 0) -> TailBatch:
    """What one tail poll could bring."""
    return TailBatch(list(alerts), list(metric_list), undecodable, at)


def test_alerts_are_counted_once_and_feed_newest_first() -> None:
    model = MonitorModel(now=T0)
    model.apply(batch([alert(1), alert(2, 950.0), alert(1)]))
    model.apply(batch([alert(2, 950.0), alert(3)], undecodable=2))
    snap = model.snapshot(T0 + 1)
    counts = (snap.alerts, snap.alerts_large, snap.alerts_alert, snap.duplicates, snap.undecodable)
    assert counts == (3, 2, 1, 2, 2)
    assert [row.alert.tx_id for row in model.feed()] == ["tx-3", "tx-2", "tx-1"]
    assert model.feed(limit=1)[0].alert.tx_id == "tx-3"


def test_feed_is_bounded() -> None:
    model = MonitorModel(feed_size=10, recent_size=50, now=T0)
    model.apply(batch([alert(i) for i in range(200)]))
    assert len(model.feed()) == 10
    assert model.feed()[0].alert.tx_id == "tx-199"
    assert len(model.account_rows("RO00ACCT1", limit=100)) == 50


def test_latency_is_receive_time_minus_event_time() -> None:
    model = MonitorModel(now=T0)
    model.apply(batch([alert(1, sent=T0), alert(2, sent=T0 + 0.1)], at=T0 + 0.5))
    rows = model.feed()
    assert rows[0].latency == pytest.approx(0.4) and rows[1].latency == pytest.approx(0.5)
    snap = model.snapshot(T0 + 1)
    assert snap.latency_p50 == pytest.approx(0.4)
    assert snap.latency_p99 == pytest.approx(0.5)


def test_latency_splits_at_spark_s_batch_start() -> None:
    model = MonitorModel(now=T0)
    early = alert(1)
    # Spark started the batch 0.3 s after the transaction; the monitor got it 0.2 s after that.
    stamped = Alert(early.tx_id, early.account_id, early.merchant, early.amount, early.currency, early.ts,
                    early.level, early.rule, format_ts(int((T0 + 0.3) * 1000)))
    foreign = Alert("tx-2", "A", "M", 600.0, "RON", format_ts(int(T0 * 1000)), "large", "amount>500",
                    None)  # type: ignore[arg-type]  # no detected_at: left out of the split
    model.apply(batch([stamped, foreign], at=T0 + 0.5))
    snap = model.snapshot(T0 + 0.5)
    assert snap.to_batch == pytest.approx((0.3, 0.3))
    assert snap.batch_to_here == pytest.approx((0.2, 0.2))
    assert snap.latency_p99 == pytest.approx(0.5)


def test_pause_freezes_the_feed_and_counts_new_rows() -> None:
    model = MonitorModel(now=T0)
    model.apply(batch([alert(1)]))
    model.pause()
    model.apply(batch([alert(2), alert(3), alert(2)]))
    assert [r.alert.tx_id for r in model.feed()] == ["tx-1"]
    assert model.new_while_paused == 2
    assert model.snapshot(T0 + 1).new_while_paused == 2
    assert model.toggle_pause() is False
    assert [r.alert.tx_id for r in model.feed()] == ["tx-3", "tx-2", "tx-1"]
    assert model.new_while_paused == 0


def test_filter_by_account_merchant_amount_and_level() -> None:
    model = MonitorModel(now=T0)
    model.apply(batch([alert(1, 600, "RO11AAA", "Lidl"), alert(2, 950, "RO22BBB", "Mega Image"),
                       alert(3, 700, "RO22BBB", "Emag")]))
    model.set_filter(FeedFilter(account="22bbb"))
    assert [r.alert.tx_id for r in model.feed()] == ["tx-3", "tx-2"]
    model.set_filter(FeedFilter(merchant="mega", min_amount=None))
    assert [r.alert.tx_id for r in model.feed()] == ["tx-2"]
    model.set_filter(FeedFilter(min_amount=650, level="large"))
    assert [r.alert.tx_id for r in model.feed()] == ["tx-3"]
    model.apply(batch([alert(4, 800), alert(5, 600)]))  # new rows are filtered on arrival
    assert [r.alert.tx_id for r in model.feed()] == ["tx-4", "tx-3"]
    model.set_filter(FeedFilter(account=" ", merchant=""))  # blanks mean "any"
    assert not model.filter.active
    assert len(model.feed()) == 5


def test_new_while_paused_counts_only_rows_the_filter_shows() -> None:
    model = MonitorModel(now=T0)
    model.set_filter(FeedFilter(level="alert"))
    model.pause()
    model.apply(batch([alert(1, 600), alert(2, 950), alert(3, 990)]))
    assert model.new_while_paused == 2


def test_account_rows_newest_first() -> None:
    model = MonitorModel(now=T0)
    model.apply(batch([alert(1, account="A"), alert(2, account="B"), alert(3, account="A")]))
    assert [r.alert.tx_id for r in model.account_rows("A")] == ["tx-3", "tx-1"]


def test_histogram_bins_live_and_total() -> None:
    model = MonitorModel(now=T0)
    model.apply(batch([alert(1, 501.0), alert(2, 999.0), alert(3, 5000.0)], at=T0))
    snap = model.snapshot(T0 + 1)
    assert snap.bin_edges[0] == 500.0 and snap.bin_edges[-1] == 1000.0
    assert snap.live_bins[0] == 1 and snap.live_bins[-1] == 2 and sum(snap.live_bins) == 3
    later = model.snapshot(T0 + 120)
    assert sum(later.live_bins) == 0 and sum(later.total_bins) == 3


def test_metrics_drive_processed_flagged_parquet_and_backlog() -> None:
    model = MonitorModel(now=T0)
    model.apply_produced(1000, T0)
    model.apply(batch(metric_list=[metrics(1, offset=400), metrics(1, offset=400),  # a repeat
                                   metrics(2, offset=700),
                                   metrics(1, QUERY_PARQUET, rows=300, large=20, alerts=5, dead=0)]))
    model.apply_produced(1500, T0 + 1)
    snap = model.snapshot(T0 + 1)
    counts = (snap.processed, snap.flagged, snap.dead_letters, snap.parquet_rows, snap.batches)
    assert counts == (200, 20, 2, 25, 2)
    assert snap.produced == 500
    assert snap.backlog == 1500 - 700
    assert snap.input_rate == 1000.0 and snap.processed_rate == 2000.0 and snap.batch_duration_ms == 150
    assert [s.count for s in snap.funnel] == [500, 200, 20, 0, 25]
    assert model.snapshot(T0 + 30).input_rate == 0.0  # no batch for a while: Spark is idle


def test_a_batch_re_run_after_a_restart_is_counted_once_and_a_fresh_checkpoint_counts_again() -> None:
    model = MonitorModel(now=T0)
    run = "5c1f1a57-0000-0000-0000-000000000000"
    first = dataclasses.replace(metrics(7), query_id=run)
    # The job restarted from its checkpoint and ran batch 7 again: the same query id, another timestamp.
    rerun = dataclasses.replace(first, timestamp="2026-11-25T12:05:00.000Z")
    # A fresh checkpoint: a new query id, batch ids from 0 again.
    fresh = [dataclasses.replace(metrics(i), query_id="9e8d7c6b-0000-0000-0000-000000000000") for i in (0, 7)]
    model.apply(batch(metric_list=[first, rerun, *fresh]))
    snap = model.snapshot(T0 + 1)
    assert (snap.batches, snap.processed, snap.flagged, snap.dead_letters) == (3, 300, 30, 3)


def test_metrics_records_of_the_wrong_types_are_undecodable_not_counted() -> None:
    good = orjson.loads(encode_metrics(metrics(1)))
    assert decode_metrics(orjson.dumps(good)) == metrics(1)
    for name, value in (("num_input_rows", "12"), ("large", None), ("batch_id", 1.5), ("alerts", True),
                        ("input_rows_per_second", "fast"), ("end_offsets", {"0": "x"}), ("query", 3),
                        ("end_offsets", [1])):
        with pytest.raises(TypeError):
            decode_metrics(orjson.dumps({**good, name: value}))
    with pytest.raises(TypeError):
        decode_metrics(b"[]")


def test_produced_rate_falls_to_zero_within_two_seconds() -> None:
    model = MonitorModel(now=T0)
    for i in range(10):
        model.apply_produced(500 * i, T0 + 0.5 * i)
    assert model.snapshot(T0 + 4.5).produced_rate == pytest.approx(1000.0)
    model.apply_produced(4500, T0 + 5.0)
    model.apply_produced(4500, T0 + 5.5)
    assert model.snapshot(T0 + 5.5).produced_rate == 0.0


def test_warnings_come_from_the_model_numbers() -> None:
    model = MonitorModel(now=T0)
    spark = ProcessView("spark", ProcState.RUNNING, 42, 10.0, None, None, [], None)
    model.apply_processes([spark], T0)
    for i in range(30):
        model.apply_produced(100 * i, T0 + 0.5 * i)
    assert not any("Spark has read none" in w for w in model.snapshot(T0 + 14.5).warnings)  # first batch
    for i in range(30, 90):
        model.apply_produced(100 * i, T0 + 0.5 * i)
    assert any("Spark has read none" in w for w in model.snapshot(T0 + 44.5).warnings)
    model.apply(batch(metric_list=[metrics(1)], at=T0 + 44.6))
    assert model.snapshot(T0 + 44.7).warnings == []
    failed = ProcessView("spark", ProcState.FAILED, None, None, 1, "ERROR boom", [], None)
    model.apply_processes([failed], T0 + 45)
    assert model.snapshot(T0 + 45).warnings[0] == "Spark job exited (code 1): ERROR boom"


def test_lagging_batches_in_a_row() -> None:
    model = MonitorModel(now=T0)
    lag = [metrics(i, rate_in=9000.0, rate_out=4000.0) for i in range(3)]
    model.apply(batch(metric_list=lag))
    assert any("falling behind" in w for w in model.snapshot(T0 + 1).warnings)
    model.apply(batch(metric_list=[metrics(9, rate_in=100.0, rate_out=4000.0)]))
    assert not any("falling behind" in w for w in model.snapshot(T0 + 1).warnings)


def test_broker_unreachable_is_reported() -> None:
    model = MonitorModel(now=T0)
    model.apply_produced(None, T0)
    snap = model.snapshot(T0 + 6)
    assert not snap.broker_reachable and snap.warnings == ["Kafka broker unreachable for 6 s"]
    model.apply_produced(10, T0 + 7)
    assert model.snapshot(T0 + 7).broker_reachable


def test_clear_resets_counters_but_keeps_feed_and_dedupe() -> None:
    model = MonitorModel(now=T0)
    model.apply_produced(100, T0)
    model.apply(batch([alert(1)], [metrics(1)]))
    model.apply_produced(300, T0 + 1)
    model.clear(T0 + 2)
    model.apply(batch([alert(1)]))  # a late repeat still counts as a repeat
    snap = model.snapshot(T0 + 2)
    assert (snap.alerts, snap.processed, snap.produced, sum(snap.total_bins)) == (0, 0, 0, 0)
    assert snap.duplicates == 1
    assert len(model.feed()) == 1
    model.apply_produced(350, T0 + 3)
    assert model.snapshot(T0 + 3).produced == 50


def test_sparklines_sample_once_per_second() -> None:
    model = MonitorModel(now=T0)
    for i in range(5):
        model.apply(batch(metric_list=[metrics(i)], at=T0 + i))
        model.snapshot(T0 + i + 0.1)
        model.snapshot(T0 + i + 0.6)
    snap = model.snapshot(T0 + 4.9)
    assert len(snap.sparklines["input"]) == 5
    assert snap.sparklines["input"][-1] == 1000.0


def test_apply_is_cheap_at_5000_alerts_per_batch() -> None:
    """Not a timing test: a generous bound that only catches per-record work gone quadratic."""
    model = MonitorModel(now=T0)
    batches = [batch([alert(b * 5000 + i, 500.0 + i % 500, f"RO{i % 997}") for i in range(5000)],
                     at=T0 + b) for b in range(5)]
    started = time.perf_counter()
    for each in batches:
        model.apply(each)
    per_batch = (time.perf_counter() - started) / len(batches)
    assert model.snapshot(T0 + 5).alerts == 25_000
    assert per_batch < 0.25
