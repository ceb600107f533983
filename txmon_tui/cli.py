"""`txmon-tui`: the terminal monitor, `txmon-tui --headless`, and `txmon-tui report`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from producer.cli import DEFAULT_RATE
from spark_app.formats import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_core.options import add_data_dir, add_kafka_options, add_version, client_config, positive_float
from txmon_tui.pipeline import PipelineConfig

DESCRIPTION = "Real-time card transaction monitor: alerts, throughput, histograms, pipeline health."


def build_parser() -> argparse.ArgumentParser:
    """The parser of `txmon-tui` and its `report` subcommand."""
    parser = argparse.ArgumentParser(prog="txmon-tui", description=DESCRIPTION)
    add_kafka_options(parser)
    add_data_dir(parser)
    parser.add_argument("--rate", type=positive_float, default=DEFAULT_RATE,
                        help="producer rate in transactions/s (default: %(default)s)")
    parser.add_argument("--large-threshold", type=positive_float, default=DEFAULT_LARGE_THRESHOLD,
                        help="amounts above this are large (default: %(default)s)")
    parser.add_argument("--alert-threshold", type=positive_float, default=DEFAULT_ALERT_THRESHOLD,
                        help="amounts above this are alerts (default: %(default)s)")
    parser.add_argument("--no-producer", dest="run_producer", action="store_false",
                        help="do not start the producer (transactions come from elsewhere)")
    parser.add_argument("--no-spark", dest="run_spark", action="store_false",
                        help="do not start the Spark job (it runs elsewhere, e.g. on a cluster)")
    parser.add_argument("--seed", type=int, default=None, help="producer seed (same seed, same transactions)")
    parser.add_argument("--headless", action="store_true",
                        help="run the pipeline without a screen and print a JSON summary at the end")
    parser.add_argument("--duration", type=positive_float, default=None, metavar="S",
                        help="with --headless: seconds to run")
    add_version(parser)
    commands = parser.add_subparsers(dest="command", metavar="{report}")
    about = "print the history histogram and a summary of the Parquet data"
    report = commands.add_parser("report", help=about, description=about.capitalize() + ".")
    add_data_dir(report)
    return parser


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
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the monitor, the headless run or the report."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        from txmon_tui import report

        return report.main(args.data_dir)
    if not args.alert_threshold > args.large_threshold:
        parser.error(f"--alert-threshold ({args.alert_threshold:g}) must be above "
                     f"--large-threshold ({args.large_threshold:g})")
    if args.duration is not None and not args.headless:
        parser.error("--duration only applies with --headless")
    config = pipeline_config(args)
    if args.headless:
        if args.duration is None:
            parser.error("--headless needs --duration S")
        from txmon_tui import headless

        return headless.run(config, args.duration)
    return run_monitor(config)


def run_monitor(config: PipelineConfig) -> int:
    """Run the screen; whatever way it ends, the children are stopped before we return."""
    # Textual is imported only here, so `report` and `--headless` never load it.
    from txmon_tui.app import create_app

    app = create_app(config, handle_signals=True)
    try:
        code = app.run()
    finally:
        if app.pipeline is not None:
            app.pipeline.stop()  # idempotent: a no-op after a clean quit, the safety net after a crash
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
