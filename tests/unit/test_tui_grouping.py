"""Unit tests of the grouped view: one row per (account, level, rule), counts, times, bounds, filter."""

from __future__ import annotations

from producer.transaction import format_ts
from spark_app.formats import Alert
from txmon_tui.monitor.feed import FeedFilter
from txmon_tui.monitor.grouping import AlertGroups
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.tail import TailBatch

T0 = 1_795_608_000.0  # 2026-11-25T12:00:00Z


def alert(n: int, amount: float = 600.0, account: str = "RO00ACCT1", sent: float = T0,
          merchant: str = "Lidl") -> Alert:
    """A flagged transaction whose level and rule follow the default thresholds."""
    level = "alert" if amount > 900 else "large"
    stamp = format_ts(int(sent * 1000))
    return Alert(f"tx-{n}", account, merchant, amount, "RON", stamp, level,
                 "amount>900" if level == "alert" else "amount>500", stamp)


def test_one_group_per_account_level_and_rule() -> None:
    groups = AlertGroups.of([alert(1, 600.0, "A", T0 + 5), alert(2, 950.0, "A", T0 + 1),
                             alert(3, 700.0, "A", T0 + 2), alert(4, 800.0, "B", T0 + 3)])
    rows = groups.newest()
    assert [(g.account_id, g.level, g.count) for g in rows] == [("B", "large", 1), ("A", "large", 2),
                                                                ("A", "alert", 1)]
    a_large = rows[1]
    assert a_large.max_amount == 700.0
    assert a_large.first_seen == format_ts(int((T0 + 2) * 1000))  # the earliest event time, not arrival
    assert a_large.last_seen == format_ts(int((T0 + 5) * 1000))
    assert a_large.last_tx_id == "tx-3"
    assert a_large.rule == "amount>500" and a_large.currency == "RON"


def test_an_update_moves_a_group_to_the_top() -> None:
    groups = AlertGroups.of([alert(1, account="A"), alert(2, account="B")])
    groups.add([alert(3, account="A")])
    assert [g.account_id for g in groups.newest()] == ["A", "B"]
    assert [g.account_id for g in groups.newest(limit=1)] == ["A"]


def test_memory_is_bounded_by_dropping_the_stalest_group() -> None:
    groups = AlertGroups(capacity=3)
    groups.add(alert(i, account=f"ACC{i}") for i in range(10))
    assert len(groups) == 3 and groups.evicted == 7
    assert [g.account_id for g in groups.newest()] == ["ACC9", "ACC8", "ACC7"]


def test_rows_are_copies_the_screen_may_keep() -> None:
    groups = AlertGroups.of([alert(1)])
    shown = groups.newest()
    groups.add([alert(2)])
    assert shown[0].count == 1 and groups.newest()[0].count == 2


def test_null_rule_and_account_are_grouped_not_fatal() -> None:
    odd = Alert("tx-x", None, None, 700.0, None, format_ts(int(T0 * 1000)), "large", None, "")  # type: ignore[arg-type]
    groups = AlertGroups.of([odd, odd])
    assert [(g.account_id, g.rule, g.count) for g in groups.newest()] == [("", "", 2)]


def test_model_groups_fresh_alerts_only_and_honours_the_filter() -> None:
    model = MonitorModel(now=T0)
    first = [alert(1, 600.0, "RO11AAAA"), alert(2, 950.0, "RO11AAAA"), alert(3, 700.0, "RO22BBBB")]
    model.apply(TailBatch(first, [], 0, T0 + 1))
    model.apply(TailBatch([alert(1, 600.0, "RO11AAAA"), alert(4, 650.0, "RO11AAAA")], [], 0, T0 + 2))
    assert [(g.account_id, g.level, g.count) for g in model.groups()] == [
        ("RO11AAAA", "large", 2), ("RO22BBBB", "large", 1), ("RO11AAAA", "alert", 1)]  # the repeat: once
    model.set_filter(FeedFilter(account="aaaa", level="large"))
    assert [(g.account_id, g.count) for g in model.groups()] == [("RO11AAAA", 2)]
    model.apply(TailBatch([alert(5, 610.0, "RO11AAAA"), alert(6, 620.0, "RO22BBBB")], [], 0, T0 + 3))
    assert [(g.account_id, g.count) for g in model.groups()] == [("RO11AAAA", 3)]
    model.set_filter(None)
    assert [g.count for g in model.groups()] == [2, 3, 1]


def test_model_groups_freeze_while_paused() -> None:
    model = MonitorModel(now=T0)
    model.apply(TailBatch([alert(1)], [], 0, T0 + 1))
    model.pause()
    model.apply(TailBatch([alert(2)], [], 0, T0 + 2))
    assert [g.count for g in model.groups()] == [1]
    model.resume()
    assert [g.count for g in model.groups()] == [2]
