"""What the streaming job is given, and how its alerts query runs: no pyspark here.

`txmon-spark` builds a JobConfig from its flags and settings before any JVM starts; the job's
modules (spark_app.job and the query modules) run it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spark_app.validation import Validation
from txmon_core import large_table, topics
from txmon_core.records.alert import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD

MODE_MICROBATCH = "microbatch"
MODE_REALTIME = "realtime"
MODES = (MODE_MICROBATCH, MODE_REALTIME)
# Real-time Mode's batch length (Spark's default): offsets are checkpointed and progress reported once
# per batch while records flow through as they arrive. The boundary between two batches is a pause
# (~0.3-0.5 s here: offsets logged, the next batch planned and its task started) that every record
# arriving in it waits out: with 5 s batches that was 5-10 % of records, a p99 of 580 ms; once in
# 5 minutes it is under 0.2 %. The cost: a killed job re-reads up to 5 minutes of records (alerts are at
# least once; readers drop repeats by tx_id).
REALTIME_BATCH = "5 minutes"
# The alerts query starts a batch at most this often: a quiet topic is asked for new offsets 10 times
# a second, not back to back; under load batches follow each other at once, so this adds no wait then.
DEFAULT_TRIGGER_MS = 100
# A batch's flagged rows come to the driver: a backlog is taken in bounded bites.
DEFAULT_MAX_OFFSETS = 200_000

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
    mode: str = MODE_MICROBATCH  # how the alerts query runs (MODES)
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
