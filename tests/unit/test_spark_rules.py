"""The account rules inside the alerts query: which rows reach them, their alerts, their durable state."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from pyspark.sql import SparkSession

from spark_app import transforms
from spark_app.account_rules import Event
from spark_app.rule_engine import RuleEngine, alert_records, rule_events
from txmon_core.records.alert import LEVEL_PATTERN, LEVEL_VELOCITY, decode_alert, rule_alert_id
from txmon_core.records.transaction import format_ts
from txmon_core.rules import RuleSettings

SOURCE_SCHEMA = "key binary, value binary, topic string, partition int, offset long"
# An hour ago: the job dead-letters a ts more than a week old.
TS_MS = time.time_ns() // 1_000_000 - 3_600_000
TS = format_ts(TS_MS)


def tx(tx_id: str, amount: object, account: str | None = "RO49RZBR0000060012345678") -> bytes:
    return orjson.dumps({"tx_id": tx_id, "account_id": account, "merchant": "eMAG", "amount": amount,
                         "currency": "RON", "ts": TS})


def test_only_valid_flagged_or_small_transactions_of_an_account_reach_the_rules(spark: SparkSession) -> None:
    values = [tx("large", 500.01), tx("edge", 500.0), tx("mid", 42.0), tx("small", 0.99), tx("one", 1.0),
              tx("no-account", 900.0, account=None), tx("bad", "900"), b"not json"]
    source = spark.createDataFrame([(b"k", v, "transactions", 0, i) for i, v in enumerate(values)],
                                   SOURCE_SCHEMA)
    classified = transforms.classify(transforms.parse_transactions(source), 500.0, 900.0)
    rows = transforms.sink_rows(classified, "alerts", "dlq", small_amount=1.0).toArrow()
    events = rule_events(rows)
    assert sorted((e.tx_id, e.amount, e.ts_ms) for _, e in events) == [
        ("large", 500.01, TS_MS), ("small", 0.99, TS_MS)]
    # The small one is only a rule input: it has no Kafka record; dead letters and flagged rows do.
    records = {t: v for t, v in zip(rows.column("tx_id").to_pylist(), rows.column("value").to_pylist(),
                                    strict=True)}
    assert records["small"] is None and records["large"] is not None
    # A transaction without an account breaks the contract: a dead letter, like the other two bad ones.
    assert rows.column("topic").to_pylist().count("dlq") == 3


def test_rule_hits_become_records_in_the_alert_format(tmp_path: Path) -> None:
    engine = RuleEngine(tmp_path / "rules.sqlite", RuleSettings(), 500.0)
    small, large = Event("t-1", TS_MS, 0.5), Event("t-2", TS_MS + 5, 912.4, None, "RON", TS)
    hits = engine.decide(0, [("A", small), ("A", large)])
    ((topic, key, value),) = alert_records(hits, {LEVEL_PATTERN: "amount<1 then amount>500 in 60s",
                                                  LEVEL_VELOCITY: "v"}, "2026-11-25T12:00:01.000Z",
                                           "alerts")
    alert = decode_alert(value)
    alert_id = rule_alert_id(LEVEL_PATTERN, "t-2")
    assert (topic, key) == ("alerts", alert_id.encode())
    assert (alert.tx_id, alert.level, alert.tx_ids, alert.account_id) == (
        alert_id, LEVEL_PATTERN, ("t-1", "t-2"), "A")
    assert alert.merchant == "" and alert.amount == 912.4 and alert.ts == TS  # null reads as ""
    assert alert.rule == "amount<1 then amount>500 in 60s" and alert.detected_at.endswith("Z")


def flagged(tx_id: str, ms: int) -> tuple[str, Event]:
    return "A", Event(tx_id, ms, 700.0)


def test_state_lasts_between_batches_and_across_restarts_and_each_batch_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.sqlite"
    engine = RuleEngine(path, RuleSettings(), 500.0)
    assert engine.decide(0, [flagged("t1", TS_MS), flagged("t2", TS_MS + 1)]) == []
    engine.commit()
    # Batch 1 decided but never committed (the job died): the restarted job decides it again alike.
    first = engine.decide(1, [flagged("t3", TS_MS + 2)])
    assert [(hit.level, hit.tx_ids) for _, hit in first] == [(LEVEL_VELOCITY, ("t1", "t2", "t3"))]
    engine.close()
    restarted = RuleEngine(path, RuleSettings(), 500.0)
    again = restarted.decide(1, [flagged("t3", TS_MS + 2)])
    assert [hit.alert_id for _, hit in again] == [hit.alert_id for _, hit in first]
    restarted.commit()
    restarted.close()
    # Committed, then Spark runs batch 1 again: it raises nothing twice.
    reopened = RuleEngine(path, RuleSettings(), 500.0)
    assert reopened.applied == 1
    assert reopened.decide(1, [flagged("t3", TS_MS + 2)]) == []


def test_late_transactions_are_ignored_and_old_state_expires(tmp_path: Path) -> None:
    settings = RuleSettings(lateness=10.0)
    engine = RuleEngine(tmp_path / "rules.sqlite", settings, 500.0)
    engine.decide(0, [flagged("t1", TS_MS), ("B", Event("b1", TS_MS + 100_000, 700.0))])
    engine.commit()
    assert set(engine.states) == {"A", "B"}
    # 10 s of lateness: flagged transactions of A from back then are dropped, not counted...
    assert engine.decide(1, [flagged("t2", TS_MS + 1), flagged("t3", TS_MS + 2)]) == []
    engine.commit()
    # ...and A's state, which ended 60 s + 1 ms after t1, is behind the watermark now: gone.
    assert set(engine.states) == {"B"}
    assert RuleEngine(tmp_path / "rules.sqlite", settings, 500.0).states.keys() == {"B"}
