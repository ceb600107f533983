"""The rules query: Kafka `transactions` → account rule alerts (velocity, pattern) on Kafka `alerts`.

A third query with its own source, checkpoint and trigger, so that its state store and Python workers
stay off the path of the alerts and Parquet queries. Per-account state lives in Spark's state store
(applyInPandasWithState: checkpointed with each batch, so a restarted job resumes it), bounded by an
event-time watermark and a timeout that drops an account's state once it can no longer matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout
from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

from spark_app import formats, transforms
from spark_app.account_rules import AccountRules, AccountState, Event, RuleHit
from txmon_core import topics
from txmon_core.rules import RuleSettings

if TYPE_CHECKING:
    import pandas as pd

    from spark_app.job import JobConfig

# Rule alerts are not latency-critical: a batch a second keeps the state store's per-batch cost small.
RULES_TRIGGER = "1 second"
# What the rules need of a transaction; event_time carries the watermark.
INPUT_COLUMNS = ("account_id", "tx_id", "merchant", "amount", "currency", "ts", "event_time")
ALERT_SCHEMA = StructType(
    [
        StructField("tx_id", StringType()),
        StructField("account_id", StringType()),
        StructField("merchant", StringType()),
        StructField("amount", DoubleType()),
        StructField("currency", StringType()),
        StructField("ts", StringType()),
        StructField("level", StringType()),
        StructField("rule", StringType()),
        StructField("tx_ids", ArrayType(StringType())),
    ]
)
# One string per account: AccountState's own JSON, so the state can change without a schema change.
STATE_SCHEMA = StructType([StructField("state", StringType())])


def rule_inputs(parsed: DataFrame, large_threshold: float, small_amount: float) -> DataFrame:
    """Valid transactions of a known account that can take part in a rule: flagged or small."""
    amount = F.col("amount")
    return parsed.where(
        F.col("reason").isNull()
        & F.col("account_id").isNotNull()
        & ((amount > large_threshold) | (amount < small_amount))
    ).select(*INPUT_COLUMNS, F.unix_millis("event_time").alias("ts_ms"))


def account_rules_function(
    settings: RuleSettings, large_threshold: float
) -> Callable[[tuple[Any, ...], Iterator[pd.DataFrame], GroupState], Iterator[pd.DataFrame]]:
    """The applyInPandasWithState function: one account's new rows and state in, its rule alerts out."""
    rules = AccountRules(settings, large_threshold)
    rule_text = {
        formats.LEVEL_VELOCITY: settings.velocity_rule(large_threshold),
        formats.LEVEL_PATTERN: settings.pattern_rule(large_threshold),
    }

    def apply(
        key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        import pandas as pd  # on the Python worker only; the driver never needs it

        if state.hasTimedOut:
            # The watermark passed the newest event time plus the longest window: nothing can match.
            state.remove()
            return
        account_state = AccountState.decode(state.get[0] if state.exists else None)
        events = [
            Event(str(tx_id), int(ts_ms), float(amount), _text(merchant), _text(currency), _text(ts))
            for frame in frames
            for tx_id, ts_ms, amount, merchant, currency, ts in zip(
                frame["tx_id"], frame["ts_ms"], frame["amount"], frame["merchant"], frame["currency"],
                frame["ts"], strict=True,
            )
        ]
        hits = rules.process(account_state, events)
        state.update((account_state.encode(),))
        state.setTimeoutTimestamp(max(rules.expires_at(account_state), state.getCurrentWatermarkMs() + 1))
        if hits:
            yield pd.DataFrame(_alert_rows(str(key[0]), hits, rule_text), columns=ALERT_SCHEMA.fieldNames())

    return apply


def _alert_rows(account_id: str, hits: list[RuleHit], rule_text: Mapping[str, str]) -> list[list[Any]]:
    """ALERT_SCHEMA rows: the completing transaction's fields under the alert's own id."""
    return [
        [hit.alert_id, account_id, hit.trigger.merchant, hit.trigger.amount, hit.trigger.currency,
         hit.trigger.ts, hit.level, rule_text[hit.level], list(hit.tx_ids)]
        for hit in hits
    ]


def _text(value: object) -> str | None:
    # pandas may hand a null string over as NaN (a float).
    return value if isinstance(value, str) else None


def rule_alerts(inputs: DataFrame, settings: RuleSettings, large_threshold: float) -> DataFrame:
    """Per-account state over the rule inputs → one row per rule alert (ALERT_SCHEMA)."""
    return (
        # Rows later than this are dropped by the stateful step; it also bounds how long state lives.
        inputs.withWatermark("event_time", f"{round(settings.lateness * 1000)} milliseconds")
        .groupBy("account_id")
        .applyInPandasWithState(
            account_rules_function(settings, large_threshold),
            ALERT_SCHEMA,
            STATE_SCHEMA,
            "append",
            GroupStateTimeout.EventTimeTimeout,
        )
    )


def alert_value() -> Column:
    """The JSON of a rule alert row as formats.Alert spells it."""
    detected_at = F.date_format(
        F.to_utc_timestamp(F.current_timestamp(), F.current_timezone()), transforms.ISO_UTC_MS
    )
    return F.to_json(
        F.struct(*transforms.TRANSACTION_FIELDS, "level", "rule", detected_at.alias("detected_at"), "tx_ids"),
        transforms.JSON_KEEP_NULLS,
    )


def kafka_records(alerts: DataFrame, topic: str = topics.ALERTS) -> DataFrame:
    """Rows for Spark's Kafka sink: key = the alert's id (its tx_id), value = its JSON."""
    return alerts.select(
        F.col("tx_id").cast("binary").alias("key"), alert_value().alias("value"), F.lit(topic).alias("topic")
    )


def start_rules_query(
    source: DataFrame, config: JobConfig, settings: RuleSettings, kafka_options: Mapping[str, str]
) -> StreamingQuery:
    """Kafka → Kafka: velocity and pattern alerts to `alerts`, state checkpointed under checkpoints/rules."""
    parsed = transforms.parse_transactions(source, config.validation)
    inputs = rule_inputs(parsed, config.large_threshold, settings.small_amount)
    alerts = rule_alerts(inputs, settings, config.large_threshold)
    return (
        # The batch's rule alerts reach the metrics as `alerts`.
        kafka_records(alerts.observe("counts", F.count(F.lit(1)).alias("alerts")))
        .writeStream.queryName(formats.QUERY_RULES)
        .format("kafka")
        .options(**kafka_options)
        .outputMode("append")
        .option("checkpointLocation", str(config.checkpoint(formats.QUERY_RULES)))
        .trigger(processingTime=RULES_TRIGGER)
        .start()
    )
