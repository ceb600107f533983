"""`txmon-spark`: parse the command line, then run the streaming job (pyspark is imported only then)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from spark_app import validation
from spark_app.config import (
    DEFAULT_MAX_OFFSETS,
    DEFAULT_TRIGGER_MS,
    MODE_MICROBATCH,
    MODES,
    JobConfig,
    under_spark_submit,
)
from txmon_core import extras
from txmon_core.options import (
    add_data_dir,
    add_kafka_options,
    add_threshold_options,
    add_version,
    check_thresholds,
    client_config,
    fail,
    positive_float,
    positive_int,
    require_bootstrap,
)
from txmon_core.rules import add_rule_options, rule_settings
from txmon_core.settings import SettingsError, add_settings_option, resolve, section
from txmon_core.topics import add_topic_options, resolve_topics

PROG = "txmon-spark"
REACH_TIMEOUT = 7.0  # seconds for the broker to answer before the job gives up, in one line


def add_query_options(parser: argparse.ArgumentParser) -> None:
    """Add --parquet-trigger, --max-offsets-per-trigger and --mode: how the job's queries run (the
    benchmarks, which start the job, take them too)."""
    parser.add_argument(
        "--parquet-trigger",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help="how long flagged rows wait before they are written to the Parquet table, in fewer and "
        "bigger files (default %(default)g)",
    )
    parser.add_argument(
        "--max-offsets-per-trigger",
        type=positive_int,
        default=DEFAULT_MAX_OFFSETS,
        metavar="N",
        help="at most N records per micro-batch after a backlog (default %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=MODE_MICROBATCH,
        help="how the alerts query runs (default %(default)s): `realtime` adds Spark's Real-time Mode "
        "query, which writes each alert within a few ms (one core held per partition, no console "
        "ALERT lines); the micro-batch query still fills the Parquet table, runs the account rules and "
        "writes every alert again a batch later (readers keep the first copy)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of txmon-spark."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Spark Structured Streaming job: flags large transactions from Kafka `transactions` "
        "into `alerts` and Parquet, bad records into `transactions.dlq`, progress into `metrics`.",
    )
    add_kafka_options(parser)
    add_data_dir(parser)
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master URL (default local[2]; under spark-submit, spark-submit's own --master)",
    )
    add_threshold_options(parser)
    add_query_options(parser)
    parser.add_argument(
        "--trigger-ms",
        type=positive_int,
        default=DEFAULT_TRIGGER_MS,
        metavar="MS",
        help="the alerts query starts a micro-batch at most every MS milliseconds (default %(default)s)",
    )
    parser.add_argument(
        "--starting-offsets",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a new checkpoint starts reading `transactions` (default %(default)s); "
        "an existing checkpoint always resumes where it stopped",
    )
    parser.add_argument(
        "--alert-lines",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="print one console line per alert (`ALERT <tx_id> <amount> <currency> account <id>`; "
        "micro-batch mode only)",
    )
    parser.add_argument(
        "--live-rules",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="take the thresholds and account rules from the `txmon.rules` topic and follow its new "
        "versions while running (the flags and settings file seed version 1 when the topic is empty); "
        "see docs/triage.md",
    )
    parser.add_argument(
        "--progress-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="also append Spark's full progress JSON of every batch to FILE, one per line (profiling)",
    )
    parser.add_argument(
        "--print-jars",
        action="store_true",
        help="print the Kafka connector jars comma-separated (for spark-submit --jars) and exit",
    )
    add_settings_option(parser)
    add_topic_options(parser)
    add_rule_options(parser)
    validation.add_validation_options(parser)
    add_version(parser)
    return parser


def unreachable(settings: dict[str, str]) -> str | None:
    """Why Kafka cannot be used (no answer within REACH_TIMEOUT, refused login), or None.

    Asked before the JVM starts: otherwise the answer comes from Spark's topic creation after 30 s.
    """
    from txmon_core.topics import KafkaAccessError, access_admin, check_access

    admin, fatal = access_admin(settings)
    try:
        check_access(admin, settings, fatal, REACH_TIMEOUT)
    except KafkaAccessError as exc:
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run txmon-spark; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)

    from txmon_core import jars

    if args.print_jars:
        try:
            print(",".join(str(path) for path in jars.spark_connector_jars()))
        except (jars.MissingToolError, jars.FetchError) as exc:
            return fail(PROG, str(exc))
        return 0
    try:
        settings = resolve(args.settings)
        client = client_config(args, settings)
        names = resolve_topics(settings, args)
    except SettingsError as exc:
        parser.error(str(exc))
    require_bootstrap(parser, client)
    check_thresholds(parser, args)
    try:
        rules = rule_settings(section(settings, "rules"), args)
        limits = validation.validation_settings(section(settings, validation.SECTION), args)
    except SettingsError as exc:
        parser.error(str(exc))
    if rules.enabled and not rules.small_amount <= args.large_threshold:
        parser.error(f"the rules' small amount ({rules.small_amount:g}) must not be above "
                     f"--large-threshold ({args.large_threshold:g})")

    # A monitor-only install has no pyspark: say which extra brings it, before any Kafka round trip.
    if problem := extras.missing(extras.SPARK):
        return fail(PROG, problem)
    if problem := unreachable(client):
        return fail(PROG, problem)

    # Imported here so that --help and bad flags answer without starting a JVM.
    from confluent_kafka import KafkaException

    from spark_app import job

    try:
        # Under spark-submit the jars are already on the classpath (--jars); adding them late is useless.
        connector = () if under_spark_submit() else tuple(jars.spark_connector_jars())
    except (jars.MissingToolError, jars.FetchError) as exc:
        return fail(PROG, str(exc))
    config = JobConfig(
        client_config=client,
        data_dir=args.data_dir,
        master=args.master,
        large_threshold=args.large_threshold,
        alert_threshold=args.alert_threshold,
        parquet_trigger_seconds=args.parquet_trigger,
        trigger_ms=args.trigger_ms,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        starting_offsets=args.starting_offsets,
        jars=connector,
        mode=args.mode,
        progress_log=args.progress_log,
        alert_lines=args.alert_lines,
        partitions=args.partitions,
        live_rules=args.live_rules,
        topic_names=names,
        validation=limits,
    )
    try:
        return job.run(config, rules=rules)
    except KafkaException as exc:
        return fail(PROG, f"Kafka at {client['bootstrap.servers']}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
