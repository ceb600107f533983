"""`txmon-spark`: parse the command line, then run the streaming job (pyspark is imported only then)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from spark_app import formats, validation
from spark_app.modes import MODE_MICROBATCH, MODES
from txmon_core.options import (
    add_data_dir,
    add_kafka_options,
    add_version,
    client_config,
    positive_float,
    positive_int,
)
from txmon_core.rules import add_rule_options, rule_settings
from txmon_core.settings import SettingsError, add_settings_option, resolve, section

REACH_TIMEOUT = 7.0  # seconds for the broker to answer before the job gives up, in one line


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of txmon-spark."""
    parser = argparse.ArgumentParser(
        prog="txmon-spark",
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
    parser.add_argument(
        "--large-threshold",
        type=positive_float,
        default=formats.DEFAULT_LARGE_THRESHOLD,
        metavar="RON",
        help="amounts strictly above this are flagged `large` (default %(default)g)",
    )
    parser.add_argument(
        "--alert-threshold",
        type=positive_float,
        default=formats.DEFAULT_ALERT_THRESHOLD,
        metavar="RON",
        help="amounts strictly above this are flagged `alert` (default %(default)g)",
    )
    parser.add_argument(
        "--parquet-trigger",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help="micro-batch interval of the Parquet query (default %(default)g)",
    )
    parser.add_argument(
        "--max-offsets-per-trigger",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most N records per micro-batch after a backlog (default: no limit)",
    )
    parser.add_argument(
        "--starting-offsets",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a new checkpoint starts reading `transactions` (default %(default)s); "
        "an existing checkpoint always resumes where it stopped",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=MODE_MICROBATCH,
        help="how the alerts query runs (default %(default)s): `realtime` is Spark's Real-time Mode "
        "(Kafka sink only, a few ms per record, one core held per partition, no console ALERT lines); "
        "the Parquet query always runs in micro-batches",
    )
    parser.add_argument(
        "--alert-lines",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="print one console line per alert (`ALERT <tx_id> <amount> <currency> account <id>`); the "
        "alerts query then writes through foreachBatch, which costs each micro-batch a cached copy and a "
        "Python round trip. Default: no lines, Spark's own Kafka sink with asynchronous progress tracking "
        "(see bench/README)",
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
            print(f"txmon-spark: {exc}", file=sys.stderr)
            return 1
        return 0
    if not args.bootstrap_servers:
        parser.error("-b/--bootstrap-servers is required (or set TXMON_BOOTSTRAP_SERVERS)")
    if not args.large_threshold < args.alert_threshold:
        parser.error(
            f"--large-threshold ({args.large_threshold:g}) must be below "
            f"--alert-threshold ({args.alert_threshold:g})"
        )
    if args.large_threshold >= formats.MAX_AMOUNT:
        parser.error(f"--large-threshold must be below {formats.MAX_AMOUNT:g}, the largest valid amount")
    try:
        settings = resolve(args.settings)
        rules = rule_settings(section(settings, "rules"), args)
        limits = validation.validation_settings(section(settings, validation.SECTION), args)
    except SettingsError as exc:
        parser.error(str(exc))
    if rules.enabled and not rules.small_amount <= args.large_threshold:
        parser.error(f"the rules' small amount ({rules.small_amount:g}) must not be above "
                     f"--large-threshold ({args.large_threshold:g})")

    if problem := unreachable(client_config(args)):
        print(f"txmon-spark: error: {problem}", file=sys.stderr)
        return 1

    # Imported here so that --help and bad flags answer without starting a JVM.
    from confluent_kafka import KafkaException

    from spark_app import job

    try:
        # Under spark-submit the jars are already on the classpath (--jars); adding them late is useless.
        connector = () if job.under_spark_submit() else tuple(jars.spark_connector_jars())
    except (jars.MissingToolError, jars.FetchError) as exc:
        print(f"txmon-spark: {exc}", file=sys.stderr)
        return 1
    config = job.JobConfig(
        client_config=client_config(args),
        data_dir=args.data_dir,
        master=args.master,
        large_threshold=args.large_threshold,
        alert_threshold=args.alert_threshold,
        parquet_trigger_seconds=args.parquet_trigger,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        starting_offsets=args.starting_offsets,
        jars=connector,
        mode=args.mode,
        progress_log=args.progress_log,
        alert_lines=args.alert_lines,
        partitions=args.partitions,
        validation=limits,
    )
    try:
        return job.run(config, rules=rules)
    except KafkaException as exc:
        print(f"txmon-spark: Kafka at {args.bootstrap_servers}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
