"""The rules query's pure steps on small batch DataFrames: which rows reach the rules, the alert rows."""

from __future__ import annotations

import time

import orjson
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from producer.transaction import format_ts
from spark_app import formats, rules, transforms
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
    inputs = rules.rule_inputs(transforms.parse_transactions(source), 500.0, 1.0)
    assert tuple(inputs.columns) == (*rules.INPUT_COLUMNS, "ts_ms")
    assertDataFrameEqual(inputs.select("tx_id", "amount", "ts_ms"),
                         [("large", 500.01, TS_MS), ("small", 0.99, TS_MS)], checkRowOrder=False)


def test_alert_rows_become_kafka_records_in_the_alert_format(spark: SparkSession) -> None:
    alert_id = formats.rule_alert_id(formats.LEVEL_PATTERN, "t-2")
    alerts = spark.createDataFrame(
        [(alert_id, "RO49RZBR0000060012345678", None, 912.4, "RON", TS, formats.LEVEL_PATTERN,
          "amount<1 then amount>500 in 60s", ["t-1", "t-2"])],
        rules.ALERT_SCHEMA,
    )
    (record,) = rules.kafka_records(alerts).collect()
    assert record.key == alert_id.encode() and record.topic == "alerts"
    alert = formats.decode_alert(record.value.encode())
    assert (alert.tx_id, alert.level, alert.tx_ids) == (alert_id, formats.LEVEL_PATTERN, ("t-1", "t-2"))
    assert alert.merchant is None and alert.amount == 912.4 and alert.ts == TS
    assert alert.detected_at.endswith("Z")


class FakeState:
    """The part of pyspark's GroupState the rules function uses, in memory."""

    def __init__(self, value: tuple[str] | None = None, watermark: int = 0, timed_out: bool = False) -> None:
        self.value = value
        self.watermark = watermark
        self.hasTimedOut = timed_out
        self.timeout: int | None = None

    @property
    def exists(self) -> bool:
        return self.value is not None

    @property
    def get(self) -> tuple[str]:
        assert self.value is not None
        return self.value

    def update(self, value: tuple[str]) -> None:
        self.value = value

    def remove(self) -> None:
        self.value = None

    def getCurrentWatermarkMs(self) -> int:  # noqa: N802 (pyspark's name)
        return self.watermark

    def setTimeoutTimestamp(self, ms: int) -> None:  # noqa: N802 (pyspark's name)
        assert ms > self.watermark
        self.timeout = ms


def frame(*rows: tuple[str, int, float]) -> object:
    import pandas as pd

    return pd.DataFrame({"account_id": ["A"] * len(rows), "tx_id": [r[0] for r in rows],
                         # The second row has no merchant: valid rows may lack one.
                         "merchant": [None if i == 1 else "eMAG" for i in range(len(rows))],
                         "amount": [r[2] for r in rows], "currency": ["RON"] * len(rows),
                         "ts": [TS] * len(rows), "ts_ms": [r[1] for r in rows]})


def test_the_state_function_keeps_state_between_batches_and_emits_alert_rows() -> None:
    apply = rules.account_rules_function(RuleSettings(), 500.0)
    state = FakeState()
    assert list(apply(("A",), iter([frame(("t1", TS_MS, 600.0), ("t2", TS_MS + 1, 0.5))]), state)) == []
    assert state.timeout == TS_MS + 1 + 60_000 + 1
    (out,) = apply(("A",), iter([frame(("t3", TS_MS + 2, 700.0), ("t4", TS_MS + 3, 800.0))]), state)
    assert list(out.columns) == rules.ALERT_SCHEMA.fieldNames()
    records = out.to_dict("records")
    assert [(r["tx_id"], r["level"], r["tx_ids"]) for r in records] == [
        ("pattern:t3", formats.LEVEL_PATTERN, ["t2", "t3"]),
        ("velocity:t4", formats.LEVEL_VELOCITY, ["t1", "t3", "t4"]),
    ]
    assert records[1]["rule"] == "count(amount>500)>=3 in 60s" and records[1]["account_id"] == "A"
    assert records[1]["merchant"] is None and records[0]["merchant"] == "eMAG"
    # Timed out: the state goes, nothing is emitted.
    state.hasTimedOut = True
    assert list(apply(("A",), iter([]), state)) == [] and not state.exists
