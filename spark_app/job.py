"""The streaming job: Kafka `transactions` → alerts + dead letters (Kafka), large transactions (Parquet).

Run it with `txmon-spark` / `python -m spark_app`, or as a file with spark-submit (the connector jars
must then be on the driver's classpath from the start):

    spark-submit --jars "$(txmon-spark --print-jars)" spark_app/job.py -b HOST:PORT

Spark's own logs go to stderr; stdout carries only the ready line (and, with --alert-lines, one line
per alert).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file (spark-submit spark_app/job.py): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from py4j.protocol import Py4JError  # noqa: E402
from pyspark import StorageLevel  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery  # noqa: E402
from pyspark.sql.streaming.listener import QueryProgressEvent  # noqa: E402

from spark_app import formats, transforms  # noqa: E402
from spark_app.checkpoints import damaged_checkpoint  # noqa: E402
from spark_app.modes import MODE_MICROBATCH, MODE_REALTIME, REALTIME_BATCH  # noqa: E402
from spark_app.progress import MetricsPublisher  # noqa: E402
from spark_app.rules import start_rules_query  # noqa: E402
from spark_app.validation import Validation  # noqa: E402
from txmon_core import topics  # noqa: E402
from txmon_core.rules import RuleSettings  # noqa: E402

READY_LINE = f"spark job running: queries {formats.QUERY_ALERTS}, {formats.QUERY_PARQUET}"
LOOPBACK = "127.0.0.1"
# librdkafka (-X) spellings that Kafka's Java client spells differently; the rest pass through as-is.
JAVA_CLIENT_ALIASES = {"sasl.mechanisms": "sasl.mechanism", "ssl.ca.location": "ssl.truststore.location"}
JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


@dataclass(frozen=True)
class JobConfig:
    """Everything the job needs, as the command line gave it."""

    client_config: Mapping[str, str]
    data_dir: Path
    master: str | None = None  # local[2], or under spark-submit whatever it was given
    large_threshold: float = formats.DEFAULT_LARGE_THRESHOLD
    alert_threshold: float = formats.DEFAULT_ALERT_THRESHOLD
    parquet_trigger_seconds: float = 5.0
    max_offsets_per_trigger: int | None = None
    starting_offsets: str = "earliest"
    jars: tuple[Path, ...] = field(default_factory=tuple)
    mode: str = MODE_MICROBATCH  # how the alerts query runs (spark_app.modes)
    progress_log: Path | None = None  # where to append every batch's full progress JSON, if anywhere
    # Print one console line per alert (micro-batch mode only): off by default, as it costs each batch
    # of the alerts query a foreachBatch round trip instead of Spark's own Kafka sink.
    alert_lines: bool = False
    partitions: int = 1  # of the topics the job creates when they are missing
    validation: Validation = field(default_factory=Validation)  # what a valid transaction keeps to

    @property
    def parquet_dir(self) -> Path:
        """Where the Parquet sink writes."""
        return self.data_dir / formats.PARQUET_DIR_NAME

    def checkpoint(self, query: str) -> Path:
        """The checkpoint folder of one query."""
        return self.data_dir / "checkpoints" / query


def under_spark_submit() -> bool:
    """True when spark-submit started this Python (the JVM and its classpath already exist)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def java_client_options(client_config: Mapping[str, str]) -> dict[str, str]:
    """librdkafka settings (-b, -X) → Spark Kafka source/sink options (`kafka.` + Java client name)."""
    settings = {JAVA_CLIENT_ALIASES.get(k, k): v for k, v in client_config.items()}
    if "ssl.truststore.location" in settings and "ssl.truststore.type" not in settings:
        settings["ssl.truststore.type"] = "PEM"  # librdkafka's ssl.ca.location is a PEM file
    username = settings.pop("sasl.username", None)
    password = settings.pop("sasl.password", None)
    mechanism = settings.get("sasl.mechanism", "PLAIN").upper()
    if username is not None and "sasl.jaas.config" not in settings and mechanism in JAAS_MODULES:
        # Java's client takes SASL credentials only as a JAAS line.
        settings["sasl.jaas.config"] = (
            f'{JAAS_MODULES[mechanism]} required username="{username}" password="{password or ""}";'
        )
    return {f"kafka.{key}": value for key, value in settings.items()}


def build_session(config: JobConfig) -> SparkSession:
    """The SparkSession: small, loopback-only when local, UTC, connector jars on the classpath."""
    builder = SparkSession.builder.appName("txmon-spark")
    master = config.master
    if master is None and not under_spark_submit():
        master = "local[2]"
    if master is not None:
        builder = builder.master(master)
    if master is not None and master.startswith("local"):
        # Otherwise Spark binds, and warns about, the machine's outward-facing address.
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        # Python workers (the account rules) need this interpreter's packages, not whatever python3 is.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.host", LOOPBACK).config("spark.driver.bindAddress", LOOPBACK)
    if config.jars:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in config.jars))
    session = (
        builder.config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "WARN")
        # One Kafka partition per topic and no shuffles worth spreading: one task per stage is enough.
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        # Parquet readers other than Spark (pyarrow in the monitor) expect standard timestamps, not INT96.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # Streaming plans never use it; turning it off spares a warning per query start.
        .config("spark.sql.adaptive.enabled", "false")
        # A stop that hangs on a dead broker must not keep a supervisor waiting forever.
        .config("spark.sql.streaming.stopTimeout", "30000")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    return session


def start_session(config: JobConfig) -> SparkSession:
    """The SparkSession, with the topics created meanwhile: the admin calls need no JVM, so they overlap."""
    with ThreadPoolExecutor(1, thread_name_prefix="txmon-topics") as pool:
        creating = pool.submit(topics.ensure_topics, config.client_config, topics.ALL,
                               partitions=config.partitions)
        spark = build_session(config)
        try:
            creating.result()
        except BaseException:
            spark.stop()
            raise
    return spark


def read_transactions(spark: SparkSession, config: JobConfig) -> DataFrame:
    """The `transactions` topic as a streaming DataFrame of Kafka source rows."""
    reader = (
        spark.readStream.format("kafka")
        .options(**java_client_options(config.client_config))
        .option("subscribe", topics.TRANSACTIONS)
        # Applies to a new checkpoint only; afterwards the checkpoint says where to resume.
        .option("startingOffsets", config.starting_offsets)
        # Offsets that vanish (retention, a recreated topic) must stop the job, not skip records.
        .option("failOnDataLoss", "true")
    )
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    return reader.load()


class BatchInterruptedError(RuntimeError):
    """A micro-batch of the alerts query was cut short by a requested stop."""


class BatchFailedError(RuntimeError):
    """A micro-batch of the alerts query failed; the full error went to stderr."""


# Spark recognises a batch interrupted by query.stop() in a Python foreachBatch only by this text in
# the error (StreamExecution.PROXY_ERROR); its regex also overflows the stack on the long JVM traces
# the original errors carry. So errors go back to Spark short, and a stop's error in the form it expects.
STOPPED_BATCH_MESSAGE = (
    "py4j.protocol.Py4JJavaError: An error occurred while calling save: "
    "java.lang.InterruptedException (the query is stopping; the batch reruns on restart)"
)


class AlertsBatchWriter:
    """foreachBatch body of the alerts query: Kafka write first (at-least-once), then console lines.

    One pass over the source: the classified batch is cached, written to Kafka, and its few alert
    lines collected from the cache. The lines are best-effort: a failed print never fails the batch.
    """

    def __init__(self, config: JobConfig, stop_requested: threading.Event) -> None:
        self.kafka_options = java_client_options(config.client_config)
        self.stop_requested = stop_requested

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        """Write one micro-batch."""
        try:
            lines = self.write(batch)
        except Exception as exc:
            if self.stop_requested.is_set():
                raise BatchInterruptedError(STOPPED_BATCH_MESSAGE) from None
            traceback.print_exc(file=sys.stderr)
            summary = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise BatchFailedError(f"alerts batch {batch_id} failed: {summary}") from None
        if lines:
            print_lines(lines)

    def write(self, batch: DataFrame) -> list[str]:
        """Write the batch's Kafka records; return its alert lines."""
        batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            (
                transforms.kafka_records(batch, topics.ALERTS, topics.DEAD_LETTERS)
                .write.format("kafka")
                .options(**self.kafka_options)
                .save()
            )
            return [row.line for row in transforms.alert_lines(batch).collect()]
        finally:
            batch.unpersist()


def print_lines(lines: list[str]) -> None:
    """Print alert lines and flush, so a supervisor reading our stdout sees them now (best-effort)."""
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError) as exc:  # a closed stdout must not fail the batch
        print(f"txmon-spark: {len(lines)} alert lines not printed: {exc}", file=sys.stderr)


def start_alerts_query(
    spark: SparkSession, source: DataFrame, config: JobConfig, stop_requested: threading.Event
) -> StreamingQuery:
    """Kafka → Kafka: flagged transactions to `alerts`, bad records to `transactions.dlq`."""
    classified = transforms.classify(
        transforms.parse_transactions(source, config.validation),
        config.large_threshold,
        config.alert_threshold,
    )
    return (
        # Count large, alerts and dead letters per batch: they reach the listener with the progress.
        classified.observe("counts", *transforms.batch_counts())
        .writeStream.queryName(formats.QUERY_ALERTS)
        # Both Kafka topics and the console lines from one cached pass over the batch.
        .foreachBatch(AlertsBatchWriter(config, stop_requested))
        .option("checkpointLocation", str(config.checkpoint(formats.QUERY_ALERTS)))
        # As fast as the micro-batch floor allows: the next batch starts when this one ends.
        .trigger(processingTime="0 seconds")
        .start()
    )


def kafka_alerts_writer(source: DataFrame, config: JobConfig) -> DataStreamWriter:
    """The alerts query up to its trigger, for Spark's own Kafka sink.

    Flagged rows go to `alerts`, bad rows to `transactions.dlq`; per-batch counts feed the metrics.
    """
    classified = transforms.classify(
        transforms.parse_transactions(source, config.validation),
        config.large_threshold,
        config.alert_threshold,
    )
    return (
        transforms.kafka_records(
            classified.observe("counts", *transforms.batch_counts()), topics.ALERTS, topics.DEAD_LETTERS
        )
        .writeStream.queryName(formats.QUERY_ALERTS)
        .format("kafka")
        .options(**java_client_options(config.client_config))
        .option("checkpointLocation", str(config.checkpoint(formats.QUERY_ALERTS)))
    )


def start_native_alerts_query(spark: SparkSession, source: DataFrame, config: JobConfig) -> StreamingQuery:
    """Kafka → Kafka in micro-batches through Spark's own Kafka sink: no console lines, less per batch.

    Without foreachBatch no batch waits on a Python callback, a cached copy and a second Spark job,
    and asynchronous progress tracking takes the offset and commit log writes off the batch's path.
    The cost: after a crash up to a second of batches is written again (the sink is at-least-once
    anyway; readers drop repeats by tx_id).
    """
    return (
        kafka_alerts_writer(source, config)
        .option("asyncProgressTrackingEnabled", "true")
        .trigger(processingTime="0 seconds")
        .start()
    )


def start_realtime_alerts_query(spark: SparkSession, source: DataFrame, config: JobConfig) -> StreamingQuery:
    """Kafka → Kafka in Spark's Real-time Mode: each record is written as it arrives, not per batch.

    Real-time Mode takes only stateless plans with a Kafka sink and update output: no foreachBatch, so
    no console ALERT lines (the monitor reads the `alerts` topic); observe() still counts per batch.
    """
    return (
        kafka_alerts_writer(source, config)
        .outputMode("update")
        # The batch length bounds checkpointing and progress reports, not latency: records flow
        # through a long-running task that holds one core per Kafka partition.
        .trigger(realTime=REALTIME_BATCH)
        .start()
    )


def start_parquet_query(spark: SparkSession, source: DataFrame, config: JobConfig) -> StreamingQuery:
    """Kafka → Parquet: every transaction above the large threshold, exactly once, by event date."""
    classified = transforms.classify(
        transforms.parse_transactions(source, config.validation),
        config.large_threshold,
        config.alert_threshold,
    )
    large, alerts, _dead = transforms.batch_counts()
    return (
        # Count what this query stores; it routes no dead letters, so that count stays zero.
        transforms.parquet_rows(classified.observe("counts", large, alerts))
        .writeStream.queryName(formats.QUERY_PARQUET)
        .format("parquet")
        .option("path", str(config.parquet_dir))
        # The file sink's own log plus this checkpoint make the output exactly once.
        .option("checkpointLocation", str(config.checkpoint(formats.QUERY_PARQUET)))
        # One folder per UTC event date, so history readers can prune by day.
        .partitionBy(formats.PARQUET_PARTITION_COLUMN)
        # A longer trigger: each Parquet batch costs files and a log entry, so fewer, bigger ones.
        .trigger(processingTime=f"{config.parquet_trigger_seconds:g} seconds")
        .start()
    )


def orphaned_parquet_table(config: JobConfig) -> str | None:
    """Why the Parquet query must not start, or None: a committed table whose checkpoint is gone.

    A new checkpoint numbers its batches from 0 again, and Spark's file sink skips every batch number
    its `_spark_metadata` log already holds: the records of those batches would be lost silently.
    """
    log = config.parquet_dir / "_spark_metadata"
    offsets = config.checkpoint(formats.QUERY_PARQUET) / "offsets"
    committed = log.is_dir() and any(entry.name[0].isdigit() for entry in log.iterdir())
    if committed and not (offsets.is_dir() and any(offsets.iterdir())):
        return (
            f"the Parquet table {config.parquet_dir} has committed batches but its checkpoint "
            f"{offsets.parent} is missing or empty: restore the checkpoint, or move the table aside "
            "to rebuild it from the start of the topic"
        )
    return None


def run(config: JobConfig, stop_requested: threading.Event | None = None,
        rules: RuleSettings | None = None) -> int:
    """Run the queries until `stop_requested` is set (SIGTERM/SIGINT) or a query fails.

    `rules` adds the account rules query (spark_app.rules) when given and enabled.
    """
    folders = [config.checkpoint(name) for name in (formats.QUERY_ALERTS, formats.QUERY_PARQUET)]
    if problem := orphaned_parquet_table(config) or damaged_checkpoint(folders, config.parquet_dir):
        print(f"txmon-spark: error: {problem}", file=sys.stderr, flush=True)
        return 1
    stop_requested = stop_requested or threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        install_stop_handlers(stop_requested)
    started = time.monotonic()
    spark = start_session(config)
    if in_main_thread:
        install_stop_handlers(stop_requested)  # SparkContext installs its own SIGINT handler: replace it
    print(f"txmon-spark: Spark session up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    publisher = (
        MetricsPublisher(config.client_config)
        if config.progress_log is None
        else ProgressLoggingPublisher(config.client_config, config.progress_log)
    )
    spark.streams.addListener(publisher)
    queries: list[StreamingQuery] = []
    code = 0
    try:
        # Each query reads the topic itself: they run at their own pace with their own checkpoints.
        if not stop_requested.is_set():
            alerts_source, parquet_source = read_transactions(spark, config), read_transactions(spark, config)
            if config.mode == MODE_REALTIME:
                queries.append(start_realtime_alerts_query(spark, alerts_source, config))
            elif not config.alert_lines:
                queries.append(start_native_alerts_query(spark, alerts_source, config))
            else:
                queries.append(start_alerts_query(spark, alerts_source, config, stop_requested))
            queries.append(start_parquet_query(spark, parquet_source, config))
            if rules is not None and rules.enabled:
                queries.append(start_rules_query(read_transactions(spark, config), config, rules,
                                                 java_client_options(config.client_config)))
                print(f"txmon-spark: {rules.describe(config.large_threshold)}", file=sys.stderr)
            print(READY_LINE, flush=True)
            print(f"txmon-spark: queries started {time.monotonic() - started:.1f} s after launch",
                  file=sys.stderr)
        while not stop_requested.wait(0.5):
            failed = [q for q in queries if not q.isActive]
            if failed:
                for query in failed:
                    error = query.exception()
                    print(f"txmon-spark: query {query.name} stopped: {error or 'no error'}", file=sys.stderr)
                code = 1
                break
    finally:
        stop_requested.set()  # from here on, an interrupted batch is part of stopping, not a failure
        for query in queries:
            try:
                query.stop()
            except (PySparkException, Py4JError) as exc:
                print(f"txmon-spark: stopping {query.name}: {exc}", file=sys.stderr)
                code = 1
        undelivered = publisher.close()
        if undelivered:
            print(f"txmon-spark: {undelivered} metrics records not delivered", file=sys.stderr)
        spark.stop()
    print(f"txmon-spark: stopped (exit {code})", file=sys.stderr)
    return code


class ProgressLoggingPublisher(MetricsPublisher):
    """MetricsPublisher that also appends each batch's full progress JSON to a file (for profiling).

    One listener rather than two: every Python listener costs a callback from the JVM per event.
    """

    def __init__(self, client_config: Mapping[str, str], path: Path) -> None:
        super().__init__(client_config)
        # Line-buffered, so a reader sees each batch at once; closed in close(), with the producer.
        self.log = open(path, "a", buffering=1)

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        """Log the progress (one line, durationMs and all), then publish the metrics."""
        if not self.log.closed:  # the listener bus may deliver a last event after close()
            self.log.write(event.progress.json.replace("\n", "") + "\n")
        super().onQueryProgress(event)

    def close(self, timeout: float = 5.0) -> int:
        """Close the log, then flush the metrics."""
        self.log.close()
        return super().close(timeout)


def install_stop_handlers(stop_requested: threading.Event) -> None:
    """SIGTERM and SIGINT ask the main loop to stop the queries cleanly (a second SIGINT is fatal)."""

    def on_signal(signum: int, _frame: object) -> None:
        if stop_requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)


if __name__ == "__main__":
    from spark_app.cli import main

    sys.exit(main())
