"""The alerts query: Kafka `transactions` → alerts and dead letters (Kafka), large transactions (Parquet).

One pass per micro-batch, one Spark job: the batch is read and parsed once, and only the rows some
sink needs (flagged and bad records, each with its Kafka record already encoded by Spark) come to the
driver as Arrow. The driver then
- produces them to `alerts` / `transactions.dlq` with librdkafka and waits for the acknowledgements
  before the batch ends, so a committed batch is delivered (at least once; readers drop repeats);
- prints the console ALERT lines, if asked (they cost nothing extra here);
- buffers the flagged rows and flushes them into the Parquet table every few seconds, in one file
  per event date (txmon_core.large_table: files appear whole; each batch id is written once).
A batch that Spark committed while its rows were still in the buffer (the job was killed) is
re-derived at the next start from the offsets the checkpoint logged for it (`replay_uncovered`), so
the table misses nothing and repeats nothing.

Against one query per sink, each reading and parsing the topic itself and paying a micro-batch's
fixed cost, this halves the work per record and leaves one batch's fixed cost per trigger.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import KafkaError, Message, Producer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from spark_app import formats, transforms
from spark_app.live_rules import Judge, segments
from spark_app.rule_engine import RuleEngine, alert_records, rule_events
from txmon_core import topics
from txmon_core.large_table import LargeTable
from txmon_core.rules import RuleSettings

if TYPE_CHECKING:
    import pyarrow as pa

    from spark_app.job import JobConfig

# Kafka columns of the Arrow rows; the rest are the Parquet columns (null for a dead letter).
KAFKA_COLUMNS = ("key", "value", "topic")
DELIVERY_TIMEOUT_S = 60.0
MAX_BUFFERED_BATCHES = 50
RULES_FILE = "rules.sqlite"  # the account rules' states, inside the alerts query's checkpoint
QUIET_S = 0.5


class BatchInterruptedError(RuntimeError):
    """A micro-batch was cut short by a requested stop."""


class BatchFailedError(RuntimeError):
    """A micro-batch failed; the full error went to stderr."""


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


class AlertProducer:
    """Produces a batch's Kafka records from the driver and waits until the broker has them all."""

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self.producer = Producer({
            **client_config,
            "client.id": "txmon-spark-alerts",
            "enable.idempotence": True,  # acks=all and no reordering or repeats on retry
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
        })
        self.failures: list[str] = []

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failures.append(str(error))

    def send(self, rows: pa.Table | None, extra: Iterable[tuple[str, bytes, bytes]] = ()) -> int:
        """Produce every row's record (a row without one is skipped) and the `extra` (topic, key,
        value) records; raise unless all are acknowledged. Returns how many were sent."""
        records: Iterable[tuple[str | None, bytes | None, bytes | None]] = ()
        if rows is not None:
            columns = (rows.column(name).to_pylist() for name in ("topic", "key", "value"))
            records = zip(*columns, strict=True)
        produce, poll = self.producer.produce, self.producer.poll
        sent = 0
        for topic, key, value in itertools.chain(records, extra):
            if value is None:
                continue  # a rule input only
            sent += 1
            while True:
                try:
                    produce(topic, value, key, on_delivery=self._on_delivery)
                    break
                except BufferError:  # librdkafka's queue is full: serve acknowledgements, then retry
                    poll(0.05)
        left = self.producer.flush(DELIVERY_TIMEOUT_S)
        failures, self.failures = self.failures, []
        if left or failures:
            raise BatchFailedError(
                f"{left} records not acknowledged in {DELIVERY_TIMEOUT_S:g} s"
                + (f"; {len(failures)} failed, first: {failures[0]}" if failures else "")
            )
        return sent

    def close(self) -> None:
        """Deliver anything still queued."""
        self.producer.flush(5.0)


@dataclass(frozen=True)
class Flush:
    """Rows of batches first..last for the table, and where `transactions` stood after `last`."""

    first: int
    last: int
    rows: pa.Table | None  # None: no flagged row in these batches
    end_offsets: Mapping[str, int]


def commit(table: LargeTable, flush: Flush, on_flush: Callable[[Flush], None] | None) -> int:
    """Write a flush into the table and report it; return the rows written."""
    table.write(flush.first, flush.last, flush.rows)
    if on_flush is not None:
        on_flush(flush)
    return 0 if flush.rows is None else flush.rows.num_rows


class ParquetBuffer:
    """Flagged rows waiting for the table, flushed when the oldest has waited `interval` seconds.

    Batches come in order from the query's thread; a flush may also come from the idle flusher.
    `on_flush(first, last, rows)` reports each flush (the metrics).
    """

    def __init__(self, table: LargeTable, interval: float,
                 on_flush: Callable[[Flush], None] | None = None) -> None:
        self.table = table
        self.interval = interval
        self.on_flush = on_flush
        self._lock = threading.Lock()  # the buffer
        self._flushing = threading.Lock()  # one flush at a time, in batch order
        self._parts: list[pa.Table] = []
        self._first: int | None = None
        self._last: int | None = None
        self._since: float | None = None
        self._end_offsets: dict[str, int] = {}
        self._added_at = 0.0

    def add(self, batch_id: int, rows: pa.Table, end_offsets: Mapping[str, int]) -> None:
        """Buffer a batch's flagged rows (none is fine: the batch still counts as covered)."""
        with self._lock:
            if batch_id <= self.table.committed or (self._last is not None and batch_id <= self._last):
                return  # a batch the table (or the buffer) already has: Spark ran it again
            if self._first is None:
                self._first, self._since = batch_id, time.monotonic()
            self._last = batch_id
            self._added_at = time.monotonic()
            self._end_offsets = dict(end_offsets)
            if rows.num_rows:
                self._parts.append(rows)

    def due(self) -> bool:
        """True when the oldest buffered batch has waited `interval`, enough batches wait, or the
        topic went quiet (no batch for QUIET_S: a drained backlog is in the table at once).

        The batch count bound keeps the table within the offsets Spark's checkpoint retains (100
        batches by default), which a restart needs to re-derive what the buffer held.
        """
        with self._lock:
            if self._first is None or self._last is None or self._since is None:
                return False
            now = time.monotonic()
            return (now - self._since >= self.interval or now - self._added_at >= QUIET_S
                    or self._last - self._first + 1 >= MAX_BUFFERED_BATCHES)

    def flush(self) -> int:
        """Write what is buffered; return the rows written."""
        import pyarrow as pa

        with self._flushing:
            with self._lock:
                if self._first is None or self._last is None:
                    return 0
                parts = self._parts
                flush = Flush(self._first, self._last, pa.concat_tables(parts) if parts else None,
                              self._end_offsets)
                self._parts, self._first, self._last, self._since = [], None, None, None
            return commit(self.table, flush, self.on_flush)


@dataclass
class RulesStep:
    """The account rules inside the alerts query: their engine, alert texts and per-batch metrics."""

    engine: RuleEngine
    small_amount: float
    rule_text: dict[str, str]
    publish: Callable[[formats.BatchMetrics], None]
    rules_version: int | None = None

    @classmethod
    def create(cls, checkpoint: Path, settings: RuleSettings, large_threshold: float,
               publish: Callable[[formats.BatchMetrics], None],
               rules_version: int | None = None) -> RulesStep:
        """The step, its state in the checkpoint folder."""
        checkpoint.mkdir(parents=True, exist_ok=True)
        return cls(RuleEngine(checkpoint / RULES_FILE, settings, large_threshold), settings.small_amount,
                   {formats.LEVEL_VELOCITY: settings.velocity_rule(large_threshold),
                    formats.LEVEL_PATTERN: settings.pattern_rule(large_threshold)}, publish, rules_version)


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
            rules.publish(formats.BatchMetrics(
                query=formats.QUERY_RULES, batch_id=batch_id, timestamp=iso_now(),
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


def parquet_part(rows: pa.Table) -> pa.Table:
    """The flagged rows of a batch's Arrow rows, with the Parquet columns only."""
    import pyarrow.compute as pc

    flagged = rows.filter(pc.is_valid(rows.column("level")))  # not dead letters, not rule inputs
    return flagged.drop_columns(list(KAFKA_COLUMNS))


def print_alert_lines(rows: pa.Table) -> None:
    """`ALERT <tx_id> <amount> RON account <id>` per alert-level row, flushed now (best-effort)."""
    lines = [
        f"ALERT {tx} {amount:.2f} {currency or 'RON'} account {account}"
        for tx, amount, currency, account, level in zip(
            *(rows.column(name).to_pylist() for name in ("tx_id", "amount", "currency", "account_id",
                                                         "level")), strict=True)
        if level == formats.LEVEL_ALERT
    ]
    if not lines:
        return
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError) as exc:  # a closed stdout must not fail the batch
        print(f"txmon-spark: {len(lines)} alert lines not printed: {exc}", file=sys.stderr)


class IdleFlusher:
    """Flushes the buffer when no batch comes to do it (a quiet topic must not hold rows back)."""

    def __init__(self, buffer: ParquetBuffer) -> None:
        self.buffer = buffer
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="txmon-parquet-flush", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> IdleFlusher:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(0.1):
            if self.buffer.due():
                try:
                    self.buffer.flush()
                except Exception as exc:  # surfaced by the job's main loop, which stops the job
                    traceback.print_exc(file=sys.stderr)
                    self.error = exc
                    return


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
        .writeStream.queryName(formats.QUERY_ALERTS)
        .foreachBatch(writer)
        .option("checkpointLocation", str(config.checkpoint(formats.QUERY_ALERTS)))
        # A batch starts at most this often: records wait at most this long when the topic is quiet,
        # and a quiet topic is not asked for new offsets back to back.
        .trigger(processingTime=f"{config.trigger_ms} milliseconds")
        .start()
    )


# ---- re-deriving the rows of batches the checkpoint committed but the table does not hold ----

def _log_json(path: Path) -> dict[str, Any]:
    # Spark's offset logs: a version line, then JSON lines (the source offsets last); the initial
    # offsets file of the Kafka source starts with a NUL byte.
    lines = [line for line in path.read_bytes().lstrip(b"\0").splitlines() if line.strip()]
    return dict(orjson.loads(lines[-1]))


def _offsets_file(checkpoint: Path, batch_id: int) -> Path:
    # Batch N's end offsets are in offsets/N; the query's first start in the source's own log.
    return checkpoint / "offsets" / str(batch_id) if batch_id >= 0 else checkpoint / "sources" / "0" / "0"


def batch_offsets(checkpoint: Path, batch_id: int,
                  topic: str = topics.TRANSACTIONS) -> tuple[dict[str, int], dict[str, int]]:
    """Partition → start and end offsets in `transactions` of a batch, from the checkpoint's logs.

    Spark writes a batch's offsets there before it runs the batch (its write-ahead log). A start that
    is no longer logged reads as the end (no rows).
    """

    def offsets(path: Path) -> dict[str, int] | None:
        try:
            data = _log_json(path)
        except FileNotFoundError:
            return None
        return {str(p): int(o) for p, o in data.get(topic, {}).items()}

    end = offsets(_offsets_file(checkpoint, batch_id)) or {}
    start = offsets(_offsets_file(checkpoint, batch_id - 1))
    return (end if start is None else start), end


def last_committed(checkpoint: Path) -> int:
    """The last batch id the query's checkpoint committed (-1 before the first)."""
    committed = _batch_ids(checkpoint / "commits")
    return committed[-1] if committed else -1


def _batch_ids(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def uncovered(checkpoint: Path, covered: int) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    """(last committed batch, start offsets, end offsets) of what the table lacks, or None."""
    committed = _batch_ids(checkpoint / "commits")
    if not committed or committed[-1] <= covered:
        return None
    last = committed[-1]
    start = _log_json(_offsets_file(checkpoint, covered))
    end = _log_json(_offsets_file(checkpoint, last))
    return last, start, end


def replay_uncovered(spark: SparkSession, config: JobConfig, buffer: ParquetBuffer,
                     kafka_options: Mapping[str, str]) -> int:
    """Write the flagged rows of committed batches the table lacks (a killed job's buffer); return rows.

    Each stretch of those batches is judged by the thresholds that judged it (spark_app.live_rules).
    """
    import pyarrow as pa

    checkpoint = config.checkpoint(formats.QUERY_ALERTS)
    names = config.topic_names
    gap = uncovered(checkpoint, buffer.table.committed)
    if gap is None:
        return 0
    last, _, end = gap
    first = buffer.table.committed + 1
    default = Judge(config.large_threshold, config.alert_threshold, RuleSettings())
    parts = []
    for seg_first, seg_last, judge in segments(checkpoint, first, last, default):
        offsets = [orjson.dumps(_log_json(_offsets_file(checkpoint, batch))).decode()
                   for batch in (seg_first - 1, seg_last)]
        source = (
            spark.read.format("kafka").options(**kafka_options).option("subscribe", names.transactions)
            .option("startingOffsets", offsets[0]).option("endingOffsets", offsets[1]).load()
        )
        judged = replace(config, large_threshold=judge.large_threshold, alert_threshold=judge.alert_threshold)
        parts.append(parquet_part(sink_rows(classified(source, judged), names).toArrow()))
    end_offsets = {str(p): int(o) for p, o in end.get(names.transactions, {}).items()}
    written = commit(buffer.table, Flush(first, last, pa.concat_tables(parts), end_offsets), buffer.on_flush)
    print(f"txmon-spark: re-derived {written} Parquet rows of batches up to {last} from Kafka",
          file=sys.stderr, flush=True)
    return written
