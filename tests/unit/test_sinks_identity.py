"""Alert ids, payloads, timestamps and the latency histogram."""

from __future__ import annotations

import orjson

from txmon_core.records.alert import Alert
from txmon_sinks.identity import alert_id, decode, epoch, id_of, payload
from txmon_sinks.latency import LatencyHistogram


def _alert(level: str = "alert") -> Alert:
    return Alert("p1-000000000001", "RO49RZBR0000060012345678", "Metro", 950.5, "RON",
                 "2026-11-25T12:00:00.123Z", level, "amount>900", "2026-11-25T12:00:01.000Z")


def test_one_transaction_may_raise_several_levels_each_with_its_own_id() -> None:
    assert id_of(_alert("alert")) == "p1-000000000001:alert"
    assert id_of(_alert("velocity")) != id_of(_alert("alert"))
    assert alert_id("t", "pattern") == "t:pattern"


def test_payload_is_the_wire_json() -> None:
    data = decode(payload(_alert()))
    assert data["tx_id"] == "p1-000000000001" and data["amount"] == 950.5 and data["level"] == "alert"
    assert orjson.loads(payload(_alert())) == data


def test_epoch_reads_iso_utc_and_rejects_the_rest() -> None:
    assert epoch("1970-01-01T00:00:01.500Z") == 1.5
    assert epoch("1970-01-01T00:00:02") == 2.0  # naive means UTC
    assert epoch("yesterday") is None and epoch(None) is None and epoch(3) is None


def test_latency_histogram_is_cumulative_with_inclusive_bounds() -> None:
    histogram = LatencyHistogram((1.0, 5.0))
    histogram.observe([0.5, 1.0, 3.0, 7.0, -2.0])
    counts = histogram.counts()
    assert counts.buckets == [(1.0, 3), (5.0, 4), (float("inf"), 5)]
    assert counts.total == 5 and counts.sum == 11.5
