"""`txmon-tui`: the terminal monitor, `--headless`, and the `report`, `check-settings`, `info` commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from producer.cli import DEFAULT_RATE
from txmon_core.options import (
    EXIT_OK,
    EXIT_RUNTIME,
    add_data_dir,
    add_kafka_options,
    add_threshold_options,
    add_version,
    check_thresholds,
    client_config,
    fail,
    positive_float,
)
from txmon_core.paths import private_data_dir
from txmon_core.settings import (
    SETTINGS_ENV,
    SettingsError,
    add_settings_option,
    default_settings_path,
    load,
    path_of,
    settings_file,
)
from txmon_core.topics import add_topic_options, resolve_topics
from txmon_core.triage import TriageSettings
from txmon_sinks.options import add_alert_report_options, add_metrics_option, settings_of, start_outlets
from txmon_tui.attach import AttachError, monitor_settings, plan, since_ms
from txmon_tui.monitor.export import FORMATS as EXPORT_FORMATS
from txmon_tui.monitor.replay import RecordingError, Replay, open_replay, parse_speed
from txmon_tui.operators_cli import add_rules_command, add_triage_report_options
from txmon_tui.supervise.config import PipelineConfig

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets

PROG = "txmon-tui"
DESCRIPTION = "Real-time card transaction monitor: alerts, throughput, histograms, pipeline health."
EPILOG = """\
With no broker named, the monitor starts its own broker, the Spark job and the producer. With one
named (-b, TXMON_BOOTSTRAP_SERVERS or [kafka] of the settings) it attaches: it starts nothing unless
asked (--with-producer, --with-spark or [monitor]) and, while it starts nothing, writes nothing.
Exit status: 0 done, 1 error, 2 usage error, 3 headless run stalled, 4 headless run could not start.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of `txmon-tui` and its `report` subcommand."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_kafka_options(parser)
    add_data_dir(parser)
    parser.add_argument("--rate", type=positive_float, default=DEFAULT_RATE,
                        help="producer rate in transactions/s (default: %(default)s)")
    add_threshold_options(parser)
    attach = parser.add_argument_group("what runs", "with a broker named the monitor attaches and starts "
                                       "nothing unless asked; without one it runs the whole pipeline")
    attach.add_argument("--with-producer", action="store_true", default=False,
                        help="attached: start the generator too (it writes to the transactions topic)")
    attach.add_argument("--with-spark", action="store_true", default=False,
                        help="attached: start the Spark job too (it writes alerts, dead letters, metrics)")
    attach.add_argument("--no-producer", dest="no_producer", action="store_true",
                        help="do not start the producer (transactions come from elsewhere)")
    attach.add_argument("--no-spark", dest="no_spark", action="store_true",
                        help="do not start the Spark job (it runs elsewhere, e.g. on a cluster)")
    attach.add_argument("--read-only", action="store_true", default=False,
                        help="write nothing, start and stop nothing: p, s, +, -, b and t are disabled "
                        "(the default when attached without --with-producer/--with-spark)")
    attach.add_argument("-y", "--yes", action="store_true",
                        help="quit at once, without asking, even while the monitor runs processes")
    backfill = attach.add_mutually_exclusive_group()
    backfill.add_argument("--since", dest="backfill_since", type=_since, default=None, metavar="WHEN",
                          help="first fill the feed, counters and histogram with the alerts since WHEN "
                          "(10m, 1h, 2d or an ISO 8601 time such as 2026-12-05T09:00Z), then go live")
    backfill.add_argument("--from-beginning", action="store_true",
                          help="first fill them with every alert the alerts topic still holds")
    parser.add_argument("--seed", type=int, default=None, help="producer seed (same seed, same transactions)")
    parser.add_argument("--broker-login", action="store_true",
                        help="the embedded broker requires a SCRAM-SHA-256 login with a random password, "
                        "kept in DATA_DIR/broker/client-login.conf (0600) for other clients' --config")
    parser.add_argument("--no-restart", dest="auto_restart", action="store_false",
                        help="do not restart a producer or Spark job that dies on its own "
                        "(by default: after 2, 4, 8 … up to 60 s)")
    parser.add_argument("--headless", action="store_true",
                        help="run the pipeline without a screen, one log line per change of state on stderr, "
                        "and print a JSON summary at the end")
    parser.add_argument("--duration", type=positive_float, default=None, metavar="S",
                        help="with --headless: seconds to run (default: until SIGTERM or Ctrl+C: a service)")
    parser.add_argument("--record", type=Path, default=None, metavar="FILE",
                        help="record the session's alerts and metrics to FILE (JSON lines) as they arrive")
    parser.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="show a recorded session instead of a live pipeline (no broker, no children)")
    parser.add_argument("--speed", type=_speed, default=None, metavar="X",
                        help="with --replay: 1 (as recorded), 4 (four times faster), 0.5, … or max")
    parser.add_argument("--export-format", choices=EXPORT_FORMATS, default="csv",
                        help="file format of the e key's exports (default: %(default)s)")
    add_topic_options(parser)
    add_settings_option(parser)  # txmon.toml: kafka, topics, monitor, rules, alert sinks, storage, metrics
    add_metrics_option(parser)
    add_version(parser, details=_version_details)
    commands = parser.add_subparsers(dest="command", metavar="{report,rules,check-settings,info}")
    about = "print the history histogram and a summary of the Parquet data"
    report = commands.add_parser("report", help=about, description=about.capitalize() + ".")
    add_data_dir(report)
    add_alert_report_options(report)
    add_triage_report_options(report)
    add_rules_command(commands)
    about = "check a settings file: unknown tables and keys, bad values, each with its line"
    check = commands.add_parser("check-settings", help=about, description=about.capitalize() + ". "
                                "Exit status 0 when it is good, 1 when it has problems.")
    check.add_argument("file", nargs="?", type=Path, default=None, metavar="FILE",
                       help=f"the file (default: --settings, else {default_settings_path()}, env "
                       f"{SETTINGS_ENV})")
    check.add_argument("--connect", action="store_true",
                       help="also try to reach the Kafka cluster of [kafka] and the webhook and mail servers")
    about = "print the paths in use (settings, data, cache, jars, logs) and the versions txmon runs on"
    info = commands.add_parser("info", help=about, description=about.capitalize() + ".")
    # SUPPRESS: given before `info` or after it, the same value counts.
    info.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="the data folder to show")
    info.add_argument("--settings", metavar="FILE", type=settings_file, default=argparse.SUPPRESS,
                      help="the settings file to show")
    return parser


def _version_details() -> list[str]:
    from txmon_tui.info import version_lines  # only when asked: it runs `java -version`

    return version_lines()


def _since(text: str) -> int:
    try:
        return since_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _speed(text: str) -> float | None:
    try:
        return parse_speed(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a positive number or 'max': {text!r}") from None


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline the options and the settings describe; SettingsError or AttachError when they are
    wrong or contradict each other."""
    settings = args.settings if args.settings is not None else load()
    client = client_config(args, settings)
    bootstrap = client.pop("bootstrap.servers", None)
    monitor = monitor_settings(settings)
    what = plan(bootstrap, with_producer=args.with_producer or monitor["with_producer"],
                with_spark=args.with_spark or monitor["with_spark"], no_producer=args.no_producer,
                no_spark=args.no_spark, read_only=args.read_only or monitor["read_only"])
    return PipelineConfig(
        bootstrap=bootstrap,
        client_settings=client,
        data_dir=args.data_dir,
        rate=args.rate,
        large_threshold=args.large_threshold,
        alert_threshold=args.alert_threshold,
        run_producer=what.run_producer,
        run_spark=what.run_spark,
        seed=args.seed,
        partitions=args.partitions,
        auto_restart=args.auto_restart,
        broker_login=args.broker_login,
        settings_path=path_of(args.settings),
        read_only=what.read_only,
        topic_names=resolve_topics(settings, args),
        since_ms=0 if args.from_beginning else args.backfill_since,
    )


def report_thresholds(args: argparse.Namespace) -> tuple[float, float]:
    """The thresholds the report draws: the rules version in force when a broker is named and its
    `txmon.rules` has one (read only: a missing topic is not created), else the flags'."""
    from txmon_core import rules_log
    from txmon_core.topics import KafkaAccessError

    thresholds = (args.large_threshold, args.alert_threshold)
    try:
        client = client_config(args, settings_of(args))
    except SettingsError:
        return thresholds
    if not client.get("bootstrap.servers"):
        return thresholds
    try:
        version = rules_log.latest(client, create=False)
    except KafkaAccessError as exc:
        print(f"txmon-tui report: the rules in force are unknown ({exc}); drawing the flags' thresholds",
              file=sys.stderr)
        return thresholds
    return thresholds if version is None else (version.rules.large_threshold, version.rules.alert_threshold)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the monitor, the headless run or the report."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "rules":
        from txmon_tui.operators_cli import rules_main

        try:
            settings = settings_of(args)
        except SettingsError as exc:
            parser.error(str(exc))
        return rules_main(args, client_config(args), settings)
    if args.command == "check-settings":
        return check_settings(args)
    if args.command == "info":
        from txmon_tui.info import info_text

        print(info_text(path_of(args.settings), args.data_dir))
        return EXIT_OK
    private_data_dir(args.data_dir)  # alerts, logs, exports and recordings: the user's only
    if args.command == "report":
        from txmon_tui.monitor import report

        if args.triage:
            from txmon_tui.operators_cli import triage_report

            return triage_report(client_config(args), args.since)
        if args.alerts:
            return report.alerts_main(args.data_dir, getattr(args, "settings", None), args.account,
                                      args.level, args.since, args.until, args.limit)
        return report.main(args.data_dir, *report_thresholds(args))
    check_thresholds(parser, args)
    if args.duration is not None and not args.headless:
        parser.error("--duration only applies with --headless")
    if args.speed is not None and args.replay is None:
        parser.error("--speed only applies with --replay")
    if args.replay is not None and (args.headless or args.record is not None):
        parser.error("--replay shows a recording on the screen: not with --headless or --record")
    if args.record is not None and args.headless:
        parser.error("--record records the monitor's session: not with --headless")
    if args.record is not None and args.record.exists():
        parser.error(f"--record: {args.record} exists; a recording never replaces another: name a new file")
    try:
        TriageSettings.from_settings(settings_of(args))  # [triage]: a bad table stops here, in one line
        config = pipeline_config(args)
    except (SettingsError, AttachError) as exc:
        parser.error(str(exc))
    if args.replay is not None:
        try:
            replay = open_replay(args.replay, 1.0 if args.speed is None else args.speed)
        except RecordingError as exc:
            parser.error(str(exc))
        return run_monitor(config, export_format=args.export_format, replay=replay, confirm_quit=False)
    if args.headless:
        from txmon_tui.monitor import headless

        return headless.run(config, args.duration, outlets=start_outlets(parser, args, config.data_dir))
    return run_monitor(config, export_format=args.export_format, record_to=args.record,
                       outlets=start_outlets(parser, args, config.data_dir), confirm_quit=not args.yes)


def check_settings(args: argparse.Namespace) -> int:
    """`check-settings [FILE]`: print each problem as FILE:LINE: message; 0 when there is none."""
    from txmon_tui.settings_check import check_file

    path = args.file or path_of(args.settings) or default_settings_path()
    if not path.exists():
        return fail(f"{PROG} check-settings", f"no settings file at {path}")
    problems = check_file(path, connect=args.connect, data_dir=args.data_dir)
    for problem in problems:
        print(problem.describe(path))
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}", file=sys.stderr)
        return EXIT_RUNTIME
    print(f"{path}: good")
    return EXIT_OK


def run_monitor(config: PipelineConfig, *, export_format: str = "csv", record_to: Path | None = None,
                replay: Replay | None = None, outlets: Outlets | None = None,
                confirm_quit: bool = True) -> int:
    """Run the screen; whatever way it ends, the children are stopped before we return."""
    # Textual is imported only here, so `report` and `--headless` never load it.
    from txmon_tui.app import create_app

    app = create_app(config, handle_signals=True, export_format=export_format, record_to=record_to,
                     replay=replay, confirm_quit=confirm_quit)
    app.outlets = outlets  # alert delivery and metrics, fed by the tail worker and each repaint
    try:
        code = app.run()
    finally:
        if app.pipeline is not None:
            app.pipeline.stop()  # idempotent: a no-op after a clean quit, the safety net after a crash
        if outlets is not None:
            outlets.close()  # what was taken is in the outbox; undelivered alerts go out next run
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
