"""`txmon-tui`: the terminal monitor, `txmon-tui --headless`, and `txmon-tui report`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from producer.cli import DEFAULT_RATE, amount_cents
from spark_app.formats import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_core.options import add_data_dir, add_kafka_options, add_version, client_config, positive_float
from txmon_core.settings import add_settings_option
from txmon_sinks.options import add_alert_report_options, add_metrics_option, start_outlets
from txmon_tui.export import FORMATS as EXPORT_FORMATS
from txmon_tui.pipeline import PipelineConfig
from txmon_tui.recording import RecordingError, Replay, open_replay, parse_speed

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets

DESCRIPTION = "Real-time card transaction monitor: alerts, throughput, histograms, pipeline health."


def threshold_amount(text: str) -> float:
    """An argparse type for a threshold: RON > 0 with at most 2 decimals (as the producer takes it)."""
    return amount_cents(text) / 100


def build_parser() -> argparse.ArgumentParser:
    """The parser of `txmon-tui` and its `report` subcommand."""
    parser = argparse.ArgumentParser(prog="txmon-tui", description=DESCRIPTION)
    add_kafka_options(parser)
    add_data_dir(parser)
    parser.add_argument("--rate", type=positive_float, default=DEFAULT_RATE,
                        help="producer rate in transactions/s (default: %(default)s)")
    parser.add_argument("--large-threshold", type=threshold_amount, default=DEFAULT_LARGE_THRESHOLD,
                        help="amounts above this are large (default: %(default)s)")
    parser.add_argument("--alert-threshold", type=threshold_amount, default=DEFAULT_ALERT_THRESHOLD,
                        help="amounts above this are alerts (default: %(default)s)")
    parser.add_argument("--no-producer", dest="run_producer", action="store_false",
                        help="do not start the producer (transactions come from elsewhere)")
    parser.add_argument("--no-spark", dest="run_spark", action="store_false",
                        help="do not start the Spark job (it runs elsewhere, e.g. on a cluster)")
    parser.add_argument("--seed", type=int, default=None, help="producer seed (same seed, same transactions)")
    parser.add_argument("--no-restart", dest="auto_restart", action="store_false",
                        help="do not restart a producer or Spark job that dies on its own "
                        "(by default: after 2, 4, 8 … up to 60 s)")
    parser.add_argument("--headless", action="store_true",
                        help="run the pipeline without a screen and print a JSON summary at the end")
    parser.add_argument("--duration", type=positive_float, default=None, metavar="S",
                        help="with --headless: seconds to run")
    parser.add_argument("--record", type=Path, default=None, metavar="FILE",
                        help="record the session's alerts and metrics to FILE (JSON lines) as they arrive")
    parser.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="show a recorded session instead of a live pipeline (no broker, no children)")
    parser.add_argument("--speed", type=_speed, default=None, metavar="X",
                        help="with --replay: 1 (as recorded), 4 (four times faster), 0.5, … or max")
    parser.add_argument("--export-format", choices=EXPORT_FORMATS, default="csv",
                        help="file format of the e key's exports (default: %(default)s)")
    add_settings_option(parser)  # txmon.toml: alert sinks, storage, metrics (and rules)
    add_metrics_option(parser)
    add_version(parser)
    commands = parser.add_subparsers(dest="command", metavar="{report}")
    about = "print the history histogram and a summary of the Parquet data"
    report = commands.add_parser("report", help=about, description=about.capitalize() + ".")
    add_data_dir(report)
    add_alert_report_options(report)
    return parser


def _speed(text: str) -> float | None:
    try:
        return parse_speed(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a positive number or 'max': {text!r}") from None


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline the options describe."""
    settings = client_config(args)
    bootstrap = settings.pop("bootstrap.servers", None)
    return PipelineConfig(
        bootstrap=bootstrap,
        client_settings=settings,
        data_dir=args.data_dir,
        rate=args.rate,
        large_threshold=args.large_threshold,
        alert_threshold=args.alert_threshold,
        run_producer=args.run_producer,
        run_spark=args.run_spark,
        seed=args.seed,
        partitions=args.partitions,
        auto_restart=args.auto_restart,
        settings_path=getattr(getattr(args, "settings", None), "path", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the monitor, the headless run or the report."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        from txmon_tui import report

        if args.alerts:
            return report.alerts_main(args.data_dir, getattr(args, "settings", None), args.account,
                                      args.level, args.since, args.until, args.limit)
        return report.main(args.data_dir)
    if not args.alert_threshold > args.large_threshold:
        parser.error(f"--alert-threshold ({args.alert_threshold!r}) must be above "
                     f"--large-threshold ({args.large_threshold!r})")
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
    config = pipeline_config(args)
    if args.replay is not None:
        try:
            replay = open_replay(args.replay, 1.0 if args.speed is None else args.speed)
        except RecordingError as exc:
            parser.error(str(exc))
        return run_monitor(config, export_format=args.export_format, replay=replay)
    if args.headless:
        if args.duration is None:
            parser.error("--headless needs --duration S")
        from txmon_tui import headless

        return headless.run(config, args.duration, outlets=start_outlets(parser, args, config.data_dir))
    return run_monitor(config, export_format=args.export_format, record_to=args.record,
                       outlets=start_outlets(parser, args, config.data_dir))


def run_monitor(config: PipelineConfig, *, export_format: str = "csv", record_to: Path | None = None,
                replay: Replay | None = None, outlets: Outlets | None = None) -> int:
    """Run the screen; whatever way it ends, the children are stopped before we return."""
    # Textual is imported only here, so `report` and `--headless` never load it.
    from txmon_tui.app import create_app

    app = create_app(config, handle_signals=True, export_format=export_format, record_to=record_to,
                     replay=replay)
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
