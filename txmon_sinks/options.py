"""Command-line options of alert delivery: --metrics-port, and `report --alerts` with its filters."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from txmon_core.settings import SettingsError, default_settings_path, resolve, settings_file

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets


def port_number(text: str) -> int:
    """An argparse type for a TCP port, 0 meaning off."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value}")
    return value


def iso_time(text: str) -> float:
    """An argparse type for an ISO 8601 date or date-time (UTC unless it says otherwise), as Unix seconds."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        message = f"expected a date or date-time like 2026-11-25T12:00, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def add_metrics_option(parser: argparse.ArgumentParser) -> None:
    """Add --metrics-port N (the Prometheus endpoint on 127.0.0.1; 0, the default, is off)."""
    parser.add_argument("--metrics-port", type=port_number, default=None, metavar="N",
                        help="serve Prometheus metrics on 127.0.0.1:N (default: [prometheus] port of the "
                        "settings, else off)")


def add_alert_report_options(report: argparse.ArgumentParser) -> None:
    """Add `report --alerts` and its filters, and --settings for the [storage] URL."""
    group = report.add_argument_group("alerts", "print stored alerts instead of the Parquet history")
    group.add_argument("--alerts", action="store_true", help="print counts per level and the newest alerts")
    group.add_argument("--account", default=None, help="only this account")
    group.add_argument("--level", default=None, help="only this level (large, alert, velocity, pattern)")
    group.add_argument("--since", type=iso_time, default=None, metavar="TIME",
                       help="event time from (ISO 8601, UTC unless given)")
    group.add_argument("--until", type=iso_time, default=None, metavar="TIME", help="event time before")
    group.add_argument("--limit", type=int, default=50, metavar="N",
                       help="alerts to list (default %(default)s)")
    # SUPPRESS: the subcommand must not reset a --settings given before `report`.
    report.add_argument("--settings", metavar="FILE", type=settings_file, default=argparse.SUPPRESS,
                        help=f"where [storage] is (default {default_settings_path()} when present)")


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the options name (--settings, else the default file when present)."""
    return resolve(getattr(args, "settings", None))


def start_outlets(
    parser: argparse.ArgumentParser, args: argparse.Namespace, data_dir: Path
) -> Outlets | None:
    """Delivery and the metrics endpoint as configured, started (None when none is); the caller closes them.

    A bad settings table, an outbox that cannot be opened or a taken port ends the command with one line.
    """
    from txmon_sinks.config import delivery_config

    settings = settings_of(args)
    try:
        config = delivery_config(settings, data_dir)
    except SettingsError as exc:
        parser.error(str(exc))
    metrics_port = getattr(args, "metrics_port", None)
    if not config.anything_on and not metrics_port:
        return None
    # Imported here: SQLAlchemy and prometheus_client load only for the commands that deliver.
    from txmon_sinks.outlets import Outlets, OutletsError

    try:
        outlets = Outlets.from_settings(settings, data_dir, metrics_port)
    except SettingsError as exc:
        parser.error(str(exc))
    try:
        outlets.start()
    except OutletsError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    return outlets
