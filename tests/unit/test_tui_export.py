"""Unit tests of the export writer: CSV and JSON of the feed and of the grouped view."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from producer.transaction import format_ts
from spark_app.formats import Alert
from txmon_tui.monitor.export import (
    FEED_FIELDS,
    GROUP_FIELDS,
    export_path,
    feed_records,
    group_records,
    write_export,
)
from txmon_tui.monitor.feed import FeedRow
from txmon_tui.monitor.grouping import AlertGroups

T0 = 1_795_608_000.0


def rows() -> list[FeedRow]:
    """Two feed rows, one with an unknown latency and a merchant that looks like a formula."""
    stamp = format_ts(int(T0 * 1000))
    first = Alert("tx-1", "RO11AAAA", "=HYPERLINK(\"x\")", 950.5, "RON", stamp, "alert", "amount>900", stamp)
    second = Alert("tx-2", "RO22BBBB", "Lidl, Cluj", 612.0, "RON", stamp, "large", "amount>500", stamp)
    return [FeedRow(first, 1.23456, T0 + 1), FeedRow(second, None, T0 + 1)]


def test_feed_to_csv(tmp_path: Path) -> None:
    path = write_export(tmp_path / "out" / "feed.csv", feed_records(rows()), FEED_FIELDS, "csv")
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == list(FEED_FIELDS)
    assert table[1][:4] == ["tx-1", "RO11AAAA", "'=HYPERLINK(\"x\")", "950.5"]  # never run as a formula
    assert table[1][-1] == "1.235"
    assert table[2][2] == "Lidl, Cluj" and table[2][-1] == ""  # quoted comma; unknown latency blank
    assert not list(tmp_path.glob("out/*.partial"))


def test_feed_to_json(tmp_path: Path) -> None:
    path = write_export(tmp_path / "feed.json", feed_records(rows()), FEED_FIELDS, "json")
    data = orjson.loads(path.read_bytes())
    assert [r["tx_id"] for r in data] == ["tx-1", "tx-2"]
    assert data[0]["merchant"] == "=HYPERLINK(\"x\")" and data[0]["amount"] == 950.5
    assert data[1]["latency_s"] is None and list(data[0]) == list(FEED_FIELDS)


def test_groups_to_csv(tmp_path: Path) -> None:
    groups = AlertGroups.of([row.alert for row in rows()] + [rows()[1].alert])
    path = write_export(tmp_path / "groups.csv", group_records(groups.newest()), GROUP_FIELDS, "csv")
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["account_id"], r["level"], r["count"], r["max_amount"]) for r in table] == [
        ("RO22BBBB", "large", "2", "612.0"), ("RO11AAAA", "alert", "1", "950.5")]


def test_export_paths_never_overwrite(tmp_path: Path) -> None:
    first = export_path(tmp_path, "feed", "csv", T0)
    assert first.name.startswith("txmon-feed-") and first.suffix == ".csv"
    first.write_text("taken")
    second = export_path(tmp_path, "feed", "csv", T0)
    assert second != first and second.name.endswith("-1.csv")


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv"):
        write_export(tmp_path / "x.xml", [], FEED_FIELDS, "xml")
