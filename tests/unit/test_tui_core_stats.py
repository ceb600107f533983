"""Unit tests of the monitor's pure statistics: rates, percentiles, bins, dedupe, series, timestamps."""

from __future__ import annotations

import pytest

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


def test_rate_meter_averages_over_its_window_and_forgets_old_events() -> None:
    meter = RateMeter(window=5.0)
    for second in range(5):
        meter.add(100, 1000.0 + second)
    assert meter.rate(1004.5) == pytest.approx(100.0)
    assert meter.rate(1007.5) == pytest.approx(40.0)  # seconds 1003 and 1004 remain
    assert meter.rate(1020.0) == 0.0


def test_total_rate_falls_to_zero_within_two_seconds_of_the_total_stopping() -> None:
    rate = TotalRate(span=1.0)
    for i in range(10):
        rate.add(1000 * i, 100.0 + 0.5 * i)  # 2,000 per second
    assert rate.rate(104.5) == pytest.approx(2000.0)
    rate.add(9000, 105.0)  # the total stopped growing at 104.5
    assert rate.rate(105.0) == pytest.approx(1000.0)  # half of the last second had growth
    rate.add(9000, 105.5)
    assert rate.rate(105.5) == 0.0
    assert rate.latest == 9000


def test_total_rate_is_zero_without_recent_samples() -> None:
    rate = TotalRate(span=1.0, keep=5.0)
    rate.add(0, 0.0)
    rate.add(100, 1.0)
    assert rate.rate(1.0) == pytest.approx(100.0)
    assert rate.rate(10.0) == 0.0


def test_latency_percentiles_nearest_rank() -> None:
    window = LatencyWindow(max_samples=1000, max_age=60.0)
    window.add([i / 100 for i in range(1, 101)], at=10.0)  # 0.01 .. 1.00
    assert window.percentile(50, now=10.0) == pytest.approx(0.50)
    assert window.percentile(99, now=10.0) == pytest.approx(0.99)
    assert window.percentile(100, now=10.0) == pytest.approx(1.00)


def test_latency_window_is_bounded_by_count_and_age() -> None:
    window = LatencyWindow(max_samples=100, max_age=60.0)
    window.add([5.0] * 80, at=0.0)
    window.add([1.0] * 80, at=30.0)
    assert len(window) == 100  # the oldest 60 samples were dropped
    assert window.percentile(50, now=30.0) == 1.0
    assert window.percentile(100, now=30.0) == 5.0
    assert window.percentile(100, now=70.0) == 1.0  # the first batch aged out
    assert window.percentile(50, now=200.0) is None


def test_amount_bins_edges_and_overflow() -> None:
    bins = AmountBins(500.0, 1000.0, 25)
    assert bins.edges[0] == 500.0 and bins.edges[-1] == 1000.0 and len(bins.edges) == 26
    assert bins.index(500.01) == 0
    assert bins.index(519.99) == 0
    assert bins.index(520.0) == 1
    assert bins.index(999.99) == 24
    assert bins.index(1000.0) == 24  # at or above the last edge: the last bin
    assert bins.index(250_000.0) == 24
    assert bins.count([501.0, 521.0, 5000.0, 5000.0]) == [1, 1] + [0] * 22 + [2]


def test_amount_histogram_live_window_expires_while_totals_stay() -> None:
    histogram = AmountHistogram(AmountBins(500.0, 1000.0, 5), window=60.0)
    histogram.add([510.0, 610.0], at=100.0)
    histogram.add([910.0], at=130.0)
    assert histogram.live_counts(130.0) == [1, 1, 0, 0, 1]
    assert histogram.live_counts(165.0) == [0, 0, 0, 0, 1]
    assert histogram.live_counts(200.0) == [0, 0, 0, 0, 0]
    assert histogram.total == [1, 1, 0, 0, 1]


def test_dedupe_recognises_repeats_within_its_capacity() -> None:
    dedupe = Dedupe(capacity=3)
    assert [dedupe.first_time(k) for k in ("a", "b", "a", "c")] == [True, True, False, True]
    assert dedupe.first_time("d") is True  # evicts "a"
    assert len(dedupe) == 3
    assert dedupe.first_time("a") is True
    assert dedupe.first_time("d") is False


def test_dedupe_in_batches_keeps_exactly_the_last_capacity_keys_across_the_ring_wrap() -> None:
    dedupe = Dedupe(capacity=5)
    assert dedupe.fresh(["a", "b", "c"], str) == ["a", "b", "c"]
    assert dedupe.fresh(["c", "d", "d", "e", "f"], str) == ["d", "e", "f"]  # repeats across and within
    assert len(dedupe) == 5  # b c d e f: "a" was forgotten when the ring wrapped
    assert dedupe.fresh(["a", "b", "f"], str) == ["a"]
    assert dedupe.fresh(["g", "h", "i", "j", "k", "l", "m"], str) == ["g", "h", "i", "j", "k", "l", "m"]
    assert len(dedupe) == 5
    assert dedupe.fresh(["h", "i", "j"], str) == ["h"]  # only i..m remained of the oversized batch
    assert all(dedupe.first_time(k) is False for k in "jklmh")  # "i", the oldest, made room for "h"
    assert dedupe.first_time("i") is True


def test_dedupe_keeps_hashes_not_keys() -> None:
    dedupe = Dedupe(capacity=1000)
    key = "p7f3a-000000000042" * 4
    dedupe.fresh([key], str)
    assert not any(isinstance(item, str) for item in dedupe._seen)  # 60-bit ints: memory per key is fixed
    assert dedupe.fresh([key[:]], str) == []


def test_series_keeps_one_sample_per_second_and_fills_gaps() -> None:
    series = Series(length=5)
    series.record(1.0, 10.2)
    series.record(2.0, 10.7)  # same second: replaced
    series.record(3.0, 13.1)  # two seconds skipped: the value repeats for them
    assert series.values == [2.0, 3.0, 3.0, 3.0]
    for second in range(14, 20):
        series.record(float(second), second)
    assert series.values == [15.0, 16.0, 17.0, 18.0, 19.0]


def test_timestamp_parser_matches_the_slow_path() -> None:
    parser = TimestampParser()
    assert parser.epoch("1970-01-01T00:00:01.500Z") == pytest.approx(1.5)
    assert parser.epoch("2026-11-25T12:00:00.123Z") == pytest.approx(1795608000.123)
    assert parser.epoch("2026-11-25T12:00:00.124Z") == pytest.approx(1795608000.124)  # cached second
    assert parser.epoch("2026-11-25T12:00:00Z") == pytest.approx(1795608000.0)
    assert parser.epoch("not a time") is None
    assert parser.epoch("2026-11-25T12:00:00.xyzZ") is None
