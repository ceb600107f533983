"""The alerts query: Kafka `transactions` → alerts and dead letters (Kafka), large transactions (Parquet).

One pass per micro-batch, one Spark job: the batch is read and parsed once, and only the rows some
sink needs (flagged and bad records, each with its Kafka record already encoded by Spark) come to the
driver as Arrow. The driver then
- produces them to `alerts` / `transactions.dlq` with librdkafka and waits for the acknowledgements
  before the batch ends, so a committed batch is delivered (at least once; readers drop repeats;
  spark_app.alert_producer);
- prints the console ALERT lines, if asked (they cost nothing extra here);
- buffers the flagged rows and flushes them into the Parquet table every few seconds, in one file
  per event date (spark_app.parquet_buffer; txmon_core.large_table: files appear whole; each batch id
  is written once).
A batch that Spark committed while its rows were still in the buffer (the job was killed) is
re-derived at the next start from the offsets the checkpoint logged for it (spark_app.replay), so
the table misses nothing and repeats nothing.

Against one query per sink, each reading and parsing the topic itself and paying a micro-batch's
fixed cost, this halves the work per record and leaves one batch's fixed cost per trigger.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from spark_app import transforms
from spark_app.alert_producer import AlertProducer, BatchFailedError
from spark_app.config import JobConfig
from spark_app.offset_log import batch_offsets
from spark_app.parquet_buffer import ParquetBuffer, parquet_part
from spark_app.rule_engine import RuleEngine, alert_records, rule_events
from txmon_core import topics
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_PATTERN, LEVEL_VELOCITY
from txmon_core.records.metrics import QUERY_ALERTS, QUERY_RULES, BatchMetrics
from txmon_core.rules import RuleSettings

if TYPE_CHECKING:
    import pyarrow as pa

RULES_FILE = "rules.sqlite"  # the account rules' states, inside the alerts query's checkpoint


class BatchInterruptedError(RuntimeError):
    """A micro-batch was cut short by a requested stop."""


# Spark recognises a batch interrupted by query.stop() in a Python foreachBatch only by this text in
# the error (StreamExecution.PROXY_ERROR); its regex also overflows the stack on the long JVM traces
# the original errors carry. So errors go back to Spark short, and a stop's error in the form it expects.
STOPPED_BATCH_MESSAGE = (
    "py4j.protocol.Py4JJavaError: An error occurred while calling save: "
    "java.lang.InterruptedException (the query is stopping; the batch reruns on restart)"
)


def classified(source: DataFrame, config: JobConfig) -> DataFrame:
    """Kafka source rows → parsed and classified rows (transforms)."""
    return transforms.classify(
        transforms.parse_transactions(source, config.validation), config.large_threshold,
        config.alert_threshold,
    )


def sink_rows(frame: DataFrame, names: topics.TopicNames, small_amount: float | None = None,
              rules_version: int | None = None) -> DataFrame:
    """The rows some sink (or, with `small_amount`, a rule) needs, with their Kafka records."""
    return transforms.sink_rows(frame, names.alerts, names.dead_letters, small_amount, rules_version)


@dataclass
class RulesStep:
    """The account rules inside the alerts query: their engine, alert texts and per-batch metrics."""

    engine: RuleEngine
    small_amount: float
    rule_text: dict[str, str]
    publish: Callable[[BatchMetrics], None]
    rules_version: int | None = None

    @classmethod
    def create(cls, checkpoint: Path, settings: RuleSettings, large_threshold: float,
               publish: Callable[[BatchMetrics], None],
               rules_version: int | None = None) -> RulesStep:
        """The step, its state in the checkpoint folder."""
        checkpoint.mkdir(parents=True, exist_ok=True)
        return cls(RuleEngine(checkpoint / RULES_FILE, settings, large_threshold), settings.small_amount,
                   {LEVEL_VELOCITY: settings.velocity_rule(large_threshold),
                    LEVEL_PATTERN: settings.pattern_rule(large_threshold)}, publish, rules_version)


class FlaggedBatchWriter:
    """foreachBatch body of the alerts query (see the module docstring)."""

    def __init__(self, producer: AlertProducer, buffer: ParquetBuffer, checkpoint: Path,
                 stop_requested: threading.Event, alert_lines: bool = False,
                 rules: RulesStep | None = None, names: topics.TopicNames | None = None) -> None:
        self.checkpoint = checkpoint
        self.names = names or topics.TopicNames()
        self.producer = producer
        self.buffer = buffer
        self.stop_requested = stop_requested
        self.alert_lines = alert_lines
        self.rules = rules

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        """Deliver one micro-batch."""
        rules = self.rules
        try:
            # The batch is already the rows the sinks need: no plan of its own to analyse and compile.
            rows = batch.toArrow()
        except Exception as exc:
            raise self._failure(exc, batch_id) from None
        start, end = batch_offsets(self.checkpoint, batch_id, self.names.transactions)
        hits = rules.engine.decide(batch_id, rule_events(rows)) if rules else []
        extra = (alert_records(hits, rules.rule_text, iso_now(), self.names.alerts, rules.rules_version)
                 if rules else [])
        self.producer.send(rows, extra)
        if rules is not None:
            rules.engine.commit()  # after the alerts are acknowledged: a crash before repeats them
            rules.publish(BatchMetrics(
                query=QUERY_RULES, batch_id=batch_id, timestamp=iso_now(),
                num_input_rows=sum(end.values()) - sum(start.get(p, 0) for p in end),
                input_rows_per_second=0.0, processed_rows_per_second=0.0, batch_duration_ms=0,
                end_offsets=end, large=0, alerts=len(hits), dead_letters=0))
        self.buffer.add(batch_id, parquet_part(rows), end)
        if self.alert_lines:
            print_alert_lines(rows)
        if self.buffer.due():
            self.buffer.flush()

    def _failure(self, exc: Exception, batch_id: int) -> Exception:
        if self.stop_requested.is_set():
            return BatchInterruptedError(STOPPED_BATCH_MESSAGE)
        traceback.print_exc(file=sys.stderr)
        summary = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return BatchFailedError(f"alerts batch {batch_id} failed: {summary}")


def iso_now() -> str:
    """Now as ISO 8601 UTC with milliseconds, as the job stamps `detected_at`."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def print_alert_lines(rows: pa.Table) -> None:
    """`ALERT <tx_id> <amount> RON account <id>` per alert-level row, flushed now (best-effort)."""
    lines = [
        f"ALERT {tx} {amount:.2f} {currency or 'RON'} account {account}"
        for tx, amount, currency, account, level in zip(
            *(rows.column(name).to_pylist() for name in ("tx_id", "amount", "currency", "account_id",
                                                         "level")), strict=True)
        if level == LEVEL_ALERT
    ]
    if not lines:
        return
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError) as exc:  # a closed stdout must not fail the batch
        print(f"txmon-spark: {len(lines)} alert lines not printed: {exc}", file=sys.stderr)


def start_alerts_query(source: DataFrame, config: JobConfig, writer: FlaggedBatchWriter,
                       rules_version: int | None = None) -> StreamingQuery:
    """Kafka → alerts, dead letters and Parquet through `writer`, one batch per trigger."""
    # Count large, alerts and dead letters per batch before the filter: they reach the metrics.
    counted = classified(source, config).observe("counts", *transforms.batch_counts())
    return (
        # The rows the sinks need are selected here, in the streaming plan Spark plans per batch
        # anyway: foreachBatch then runs that plan as it is instead of analysing another one.
        sink_rows(counted, config.topic_names, writer.rules.small_amount if writer.rules else None,
                  rules_version)
        .writeStream.queryName(QUERY_ALERTS)
        .foreachBatch(writer)
        .option("checkpointLocation", str(config.checkpoint(QUERY_ALERTS)))
        # A batch starts at most this often: records wait at most this long when the topic is quiet,
        # and a quiet topic is not asked for new offsets back to back.
        .trigger(processingTime=f"{config.trigger_ms} milliseconds")
        .start()
    )


