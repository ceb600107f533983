"""The job's SparkSession and its `transactions` source."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame, SparkSession

from spark_app import class_archive
from spark_app.config import JobConfig, java_client_options, under_spark_submit
from txmon_core import topics

LOOPBACK = "127.0.0.1"
CHECKPOINT_FILE_MANAGER = (
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager")


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
        # Checkpoint logs through Hadoop's FileSystem API, not its FileContext one: on the local disk
        # the latter starts a `readlink` process for each file of a rename (16 per micro-batch, 45 ms
        # of its 200, bench/README.md); neither makes the exists-then-rename of a log entry atomic there.
        .config("spark.sql.streaming.checkpointFileManagerClass", CHECKPOINT_FILE_MANAGER)
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
