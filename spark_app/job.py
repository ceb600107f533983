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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file (spark-submit spark_app/job.py): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from py4j.protocol import Py4JError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql.streaming import StreamingQuery  # noqa: E402
from pyspark.sql.streaming.listener import QueryProgressEvent  # noqa: E402

from spark_app import class_archive, flagged, live_rules, transforms  # noqa: E402
from spark_app.checkpoints import damaged_checkpoint  # noqa: E402
from spark_app.live_rules import Judge  # noqa: E402
from spark_app.modes import (  # noqa: E402
    DEFAULT_MAX_OFFSETS,
    DEFAULT_TRIGGER_MS,
    MODE_MICROBATCH,
    MODE_REALTIME,
    REALTIME_BATCH,
)
from spark_app.progress import MetricsPublisher  # noqa: E402
from spark_app.validation import Validation  # noqa: E402
from txmon_core import large_table, rules_log, topics  # noqa: E402
from txmon_core.large_table import LargeTable  # noqa: E402
from txmon_core.records import ready  # noqa: E402
from txmon_core.records.alert import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD  # noqa: E402
from txmon_core.records.metrics import QUERIES, QUERY_ALERTS, QUERY_REALTIME  # noqa: E402
from txmon_core.rules import RuleSettings  # noqa: E402

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
    large_threshold: float = DEFAULT_LARGE_THRESHOLD
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD
    parquet_trigger_seconds: float = 5.0  # how long flagged rows wait for a flush into the table
    trigger_ms: int = DEFAULT_TRIGGER_MS  # the alerts query starts a batch at most this often
    max_offsets_per_trigger: int | None = DEFAULT_MAX_OFFSETS
    starting_offsets: str = "earliest"
    jars: tuple[Path, ...] = field(default_factory=tuple)
    mode: str = MODE_MICROBATCH  # how the alerts query runs (spark_app.modes)
    progress_log: Path | None = None  # where to append every batch's full progress JSON, if anywhere
    # Print one console line per alert (micro-batch mode only): off by default, as it costs each batch
    # of the alerts query a foreachBatch round trip instead of Spark's own Kafka sink.
    alert_lines: bool = False
    partitions: int = 1  # of the topics the job creates when they are missing
    live_rules: bool = False  # thresholds and account rules from `txmon.rules` (spark_app.live_rules)
    topic_names: topics.TopicNames = field(default_factory=topics.TopicNames)  # [topics] and the topic flags
    validation: Validation = field(default_factory=Validation)  # what a valid transaction keeps to

    @property
    def parquet_dir(self) -> Path:
        """Where the Parquet sink writes."""
        return self.data_dir / large_table.DIR_NAME

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
            f"{JAAS_MODULES[mechanism]} required username={jaas_quoted(username)} "
            f"password={jaas_quoted(password or '')};"
        )
    return {f"kafka.{key}": value for key, value in settings.items()}


def jaas_quoted(value: str) -> str:
    """A JAAS option value in double quotes: a quote or backslash inside is escaped with a backslash,
    so a password holding `"` or `;` stays one value instead of ending the login line."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        # txmon runs no Python on executors; should Spark start a Python worker, it gets this interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.host", LOOPBACK).config("spark.driver.bindAddress", LOOPBACK)
    if config.jars:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in config.jars))
    if not under_spark_submit() and (options := class_archive.options(config.jars)):
        builder = builder.config("spark.driver.extraJavaOptions", options)
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
        # Checkpoints are as private as the rest of the data dir (Hadoop's file system has its own mask).
        .config("spark.hadoop.fs.permissions.umask-mode", "077")
        # Streaming plans never use it; turning it off spares a warning per query start.
        .config("spark.sql.adaptive.enabled", "false")
        # An idle stateless query runs no batch anyway; the rules query need not run one just to move
        # its watermark: its state expires at its next batch with data.
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        # A stop that hangs on a dead broker must not keep a supervisor waiting forever.
        .config("spark.sql.streaming.stopTimeout", "30000")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    return session


def start_session(config: JobConfig) -> SparkSession:
    """The SparkSession, with the topics created meanwhile: the admin calls need no JVM, so they overlap."""
    with ThreadPoolExecutor(1, thread_name_prefix="txmon-topics") as pool:
        creating = pool.submit(topics.ensure_topics, config.client_config, config.topic_names.all,
                               partitions=config.partitions)
        spark = build_session(config)
        try:
            creating.result()
        except BaseException:
            spark.stop()
            raise
    return spark


def read_transactions(spark: SparkSession, config: JobConfig, realtime: bool = False) -> DataFrame:
    """The `transactions` topic as a streaming DataFrame of Kafka source rows.

    A micro-batch is bounded (`max_offsets_per_trigger`) and read by at least as many tasks as Spark
    has cores, even from fewer Kafka partitions; Real-time Mode (one long task per partition) takes
    neither.
    """
    reader = (
        spark.readStream.format("kafka")
        .options(**java_client_options(config.client_config))
        .option("subscribe", config.topic_names.transactions)
        # Applies to a new checkpoint only; afterwards the checkpoint says where to resume.
        .option("startingOffsets", config.starting_offsets)
        # Offsets that vanish (retention, a recreated topic) must stop the job, not skip records.
        .option("failOnDataLoss", "true")
    )
    if realtime:
        return reader.load()
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    # One partition per core: otherwise a topic of one partition is parsed by one core only.
    return reader.option("minPartitions", str(spark.sparkContext.defaultParallelism)).load()


def start_realtime_alerts_query(source: DataFrame, config: JobConfig,
                                rules_version: int | None = None) -> StreamingQuery:
    """Kafka → Kafka in Spark's Real-time Mode: each record is written as it arrives, not per batch.

    Real-time Mode takes only stateless plans with a Kafka sink and update output, so this query
    writes alerts and dead letters only, the fast copy; the micro-batch alerts query beside it fills
    the Parquet table and writes them again, the copy that is never lost (see start_queries).
    """
    # No observe(): the alerts query beside it counts every batch for the metrics.
    return (
        transforms.kafka_records(flagged.classified(source, config), config.topic_names.alerts,
                                 config.topic_names.dead_letters, rules_version)
        .writeStream.queryName(QUERY_REALTIME)
        .format("kafka")
        .options(**java_client_options(config.client_config))
        .option("checkpointLocation", str(config.checkpoint(QUERY_REALTIME)))
        .outputMode("update")
        # The batch length bounds checkpointing and progress reports, not latency: records flow
        # through a long-running task that holds one core per Kafka partition.
        .trigger(realTime=REALTIME_BATCH)
        .start()
    )


def start_problem(config: JobConfig) -> str | None:
    """Why the job must not start (a table it cannot continue, a damaged checkpoint), or None."""
    table = config.parquet_dir
    if problem := large_table.legacy_layout(table):
        return problem
    offsets = config.checkpoint(QUERY_ALERTS) / "offsets"
    if large_table.has_rows(table) and not (offsets.is_dir() and any(offsets.iterdir())):
        # A new checkpoint reads the topic from its start again: every row would be stored twice.
        return (
            f"the Parquet table {table} has committed batches but its checkpoint {offsets.parent} is "
            "missing or empty: "
            "restore the checkpoint, or move the table aside to rebuild it from the start of the topic"
        )
    folders = [config.checkpoint(name) for name in QUERIES]
    return damaged_checkpoint(folders, table)


def run(config: JobConfig, stop_requested: threading.Event | None = None,
        rules: RuleSettings | None = None) -> int:
    """Run the queries until `stop_requested` is set (SIGTERM/SIGINT) or a query fails.

    `rules` adds the account rules (spark_app.rule_engine) when given and enabled.
    """
    if problem := start_problem(config):
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
        MetricsPublisher(config.client_config, config.topic_names.metrics, config.topic_names.transactions)
        if config.progress_log is None
        else ProgressLoggingPublisher(config.client_config, config.progress_log, config.topic_names)
    )
    spark.streams.addListener(publisher)
    buffer = flagged.ParquetBuffer(LargeTable(config.parquet_dir), config.parquet_trigger_seconds,
                                   on_flush=publisher.publish_flush)
    producer = flagged.AlertProducer(config.client_config)
    judge = Judge(config.large_threshold, config.alert_threshold, rules or RuleSettings(enabled=False))
    watcher = None
    running: Running | None = None
    code = 0
    try:
        if config.live_rules:
            seed = rules_log.Rules(judge.large_threshold, judge.alert_threshold, judge.account)
            version = rules_log.seed_if_empty(config.client_config, seed)
            judge = judge_of(version)
            watcher = rules_log.RulesWatcher(config.client_config).start()
        with flagged.IdleFlusher(buffer) as flusher:
            if not stop_requested.is_set():
                running = start_queries(spark, config, judge, buffer, producer, publisher)
                print(ready.JOB_LINE, flush=True)
                print(f"txmon-spark: queries started {time.monotonic() - started:.1f} s after launch",
                      file=sys.stderr)
            while running is not None and not code and not stop_requested.wait(0.5):
                failed = [q for q in running.queries if not q.isActive]
                for query in failed:
                    error = query.exception()
                    print(f"txmon-spark: query {query.name} stopped: {error or 'no error'}", file=sys.stderr)
                if flusher.error is not None:
                    print(f"txmon-spark: writing the Parquet table failed: {flusher.error}", file=sys.stderr)
                if failed or flusher.error is not None:
                    code = 1
                elif watcher is not None and (newer := watcher.current()) and newer.version != judge.version:
                    # A new rules version: the batches from the next one on are judged by it. What
                    # the old queries buffered goes into the table first, as at any stop.
                    code = running.stop()
                    if not code:
                        buffer.flush()
                        judge = judge_of(newer)
                        running = start_queries(spark, config, judge, buffer, producer, publisher)
            stop_requested.set()  # from here on, an interrupted batch is part of stopping, not a failure
            if running is not None:
                code = running.stop() or code
        if not code:
            buffer.flush()  # what the stopped batches left in the buffer; a failed job replays it instead
    finally:
        stop_requested.set()
        if watcher is not None:
            watcher.close()
        producer.close()
        undelivered = publisher.close()
        if undelivered:
            print(f"txmon-spark: {undelivered} metrics records not delivered", file=sys.stderr)
        spark.stop()
    print(f"txmon-spark: stopped (exit {code})", file=sys.stderr)
    return code


def judge_of(version: rules_log.RulesVersion) -> Judge:
    """What a rules version judges by."""
    rules = version.rules
    return Judge(rules.large_threshold, rules.alert_threshold, rules.account, version.version)


@dataclass
class Running:
    """The queries running under one rules version, and how to stop them."""

    queries: list[StreamingQuery]
    writer: flagged.FlaggedBatchWriter

    def stop(self) -> int:
        """Stop every query (an interrupted batch runs again at the next start); 1 if one failed to."""
        code = 0
        self.writer.stop_requested.set()  # a batch cut short now is part of stopping, not a failure
        for query in self.queries:
            try:
                query.stop()
            except (PySparkException, Py4JError) as exc:
                print(f"txmon-spark: stopping {query.name}: {exc}", file=sys.stderr)
                code = 1
        if self.writer.rules is not None:
            self.writer.rules.engine.close()
        return code


def start_queries(spark: SparkSession, config: JobConfig, judge: Judge, buffer: flagged.ParquetBuffer,
                  producer: flagged.AlertProducer, publisher: MetricsPublisher) -> Running:
    """Re-derive what the table lacks, then start every query with `judge`'s thresholds and rules."""
    checkpoint = config.checkpoint(QUERY_ALERTS)
    flagged.replay_uncovered(spark, config, buffer, java_client_options(config.client_config))
    config = replace(config, large_threshold=judge.large_threshold, alert_threshold=judge.alert_threshold)
    # The batches Spark has not committed yet run again under this version.
    live_rules.record_switch(checkpoint, flagged.last_committed(checkpoint) + 1, judge)
    if judge.version is not None:
        print(f"txmon-spark: rules version {judge.version} in force: large > {judge.large_threshold:g}, "
              f"alert > {judge.alert_threshold:g}", file=sys.stderr, flush=True)
    realtime = config.mode == MODE_REALTIME
    queries = []
    if realtime:
        queries.append(start_realtime_alerts_query(read_transactions(spark, config, realtime=True), config,
                                                   judge.version))
    step = None
    if judge.account.enabled:
        step = flagged.RulesStep.create(checkpoint, judge.account, judge.large_threshold, publisher.publish,
                                        judge.version)
        print(f"txmon-spark: {judge.account.describe(judge.large_threshold)}", file=sys.stderr)
    # In Real-time Mode the alerts query still fills the Parquet table, runs the rules and writes every
    # alert and dead letter a second time, within a micro-batch: Spark 4.2's Real-time query was seen
    # to skip the records of the last ~2 s of a batch (16-24 flagged ones at each 5-minute boundary,
    # bench/README.md), and alerts are at least once. Readers keep the first copy of a tx_id.
    writer = flagged.FlaggedBatchWriter(producer, buffer, checkpoint, threading.Event(),
                                        alert_lines=config.alert_lines and not realtime,
                                        rules=step, names=config.topic_names)
    source = read_transactions(spark, config)
    queries.append(flagged.start_alerts_query(source, config, writer, judge.version))
    return Running(queries, writer)


class ProgressLoggingPublisher(MetricsPublisher):
    """MetricsPublisher that also appends each batch's full progress JSON to a file (for profiling).

    One listener rather than two: every Python listener costs a callback from the JVM per event.
    """

    def __init__(self, client_config: Mapping[str, str], path: Path,
                 names: topics.TopicNames | None = None) -> None:
        names = names or topics.TopicNames()
        super().__init__(client_config, names.metrics, names.transactions)
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
