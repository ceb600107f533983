"""The streaming job: Kafka `transactions` → alerts + dead letters (Kafka), large transactions (Parquet).

Run it with `txmon-spark` / `python -m spark_app`, or as a file with spark-submit (the connector jars
must then be on the driver's classpath from the start):

    spark-submit --jars "$(txmon-spark --print-jars)" spark_app/__main__.py -b HOST:PORT

Spark's own logs go to stderr; stdout carries only the ready line (and, with --alert-lines, one line
per alert).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, replace

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from spark_app import flagged, live_rules
from spark_app.alert_producer import AlertProducer
from spark_app.checkpoints import damaged_checkpoint
from spark_app.config import MODE_REALTIME, JobConfig, java_client_options
from spark_app.live_rules import Judge
from spark_app.offset_log import last_committed
from spark_app.parquet_buffer import IdleFlusher, ParquetBuffer
from spark_app.progress import MetricsPublisher, ProgressPoller
from spark_app.realtime import start_realtime_alerts_query
from spark_app.replay import replay_uncovered
from spark_app.session import read_transactions, start_session
from txmon_core import large_table, rules_log
from txmon_core.large_table import LargeTable
from txmon_core.records import ready
from txmon_core.records.metrics import QUERIES, QUERY_ALERTS
from txmon_core.rules import RuleSettings


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
    publisher = MetricsPublisher(config.client_config, config.topic_names.metrics,
                                 config.topic_names.transactions)
    running: Running | None = None
    poller = ProgressPoller(publisher, lambda: running.queries if running is not None else [],
                            config.progress_log).start()
    buffer = ParquetBuffer(LargeTable(config.parquet_dir), config.parquet_trigger_seconds,
                           on_flush=publisher.publish_flush)
    producer = AlertProducer(config.client_config)
    judge = Judge(config.large_threshold, config.alert_threshold, rules or RuleSettings(enabled=False))
    watcher = None
    code = 0
    try:
        if config.live_rules:
            seed = rules_log.Rules(judge.large_threshold, judge.alert_threshold, judge.account)
            version = rules_log.seed_if_empty(config.client_config, seed)
            judge = judge_of(version)
            watcher = rules_log.RulesWatcher(config.client_config).start()
        with IdleFlusher(buffer) as flusher:
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
                    poller.poll()  # the stopped queries' last batches, before they are replaced
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
        poller.close()
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


def start_queries(spark: SparkSession, config: JobConfig, judge: Judge, buffer: ParquetBuffer,
                  producer: AlertProducer, publisher: MetricsPublisher) -> Running:
    """Re-derive what the table lacks, then start every query with `judge`'s thresholds and rules."""
    checkpoint = config.checkpoint(QUERY_ALERTS)
    replay_uncovered(spark, config, buffer, java_client_options(config.client_config))
    config = replace(config, large_threshold=judge.large_threshold, alert_threshold=judge.alert_threshold)
    # The batches Spark has not committed yet run again under this version.
    live_rules.record_switch(checkpoint, last_committed(checkpoint) + 1, judge)
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


def install_stop_handlers(stop_requested: threading.Event) -> None:
    """SIGTERM and SIGINT ask the main loop to stop the queries cleanly (a second SIGINT is fatal)."""

    def on_signal(signum: int, _frame: object) -> None:
        if stop_requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

