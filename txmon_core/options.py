"""Command-line options every txmon command spells the same way: -b, -X, --data-dir, --version."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from txmon_core import __version__
from txmon_core.paths import default_data_dir

BOOTSTRAP_ENV = "TXMON_BOOTSTRAP_SERVERS"


def client_setting(text: str) -> tuple[str, str]:
    """Parse one `-X key=value` client setting (as kcat spells them)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"-X expects key=value, got {text!r}")
    return key.strip(), value


def config_file(text: str) -> dict[str, str]:
    """An argparse type for --config FILE: `key=value` client settings, one a line, `#` comments."""
    path = Path(text)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(f"{text} is not a text file") from None
    settings = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            # The line may hold a secret: name where it is, never what it says.
            raise argparse.ArgumentTypeError(f"{text} line {number}: expected key=value")
        settings[key.strip()] = value.strip()
    return settings


def positive_float(text: str) -> float:
    """An argparse type for a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type for a whole number > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


def add_version(parser: argparse.ArgumentParser) -> None:
    """Add --version."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def add_kafka_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add -b/--bootstrap-servers (env TXMON_BOOTSTRAP_SERVERS) and repeatable -X key=value."""
    parser.add_argument(
        "-b",
        "--bootstrap-servers",
        metavar="HOST:PORT",
        default=os.environ.get(BOOTSTRAP_ENV),
        required=required and not os.environ.get(BOOTSTRAP_ENV),
        help=f"Kafka bootstrap servers (env {BOOTSTRAP_ENV})",
    )
    parser.add_argument(
        "-X",
        dest="client_settings",
        metavar="KEY=VALUE",
        type=client_setting,
        action="append",
        default=[],
        help="Kafka client setting passed through (repeatable), e.g. -X security.protocol=SASL_SSL",
    )
    parser.add_argument(
        "--partitions",
        type=positive_int,
        default=1,
        metavar="N",
        help="partitions of the topics this command creates when they are missing (default 1; "
        "existing topics keep theirs)",
    )
    parser.add_argument(
        "--config",
        dest="client_config_file",
        metavar="FILE",
        type=config_file,
        default={},
        help="read Kafka client settings (key=value lines) from FILE, e.g. passwords, which must not be "
        "given as -X where other users can see command lines; -X and -b override it",
    )


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Add --data-dir (default: the user's XDG data folder)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="folder for Parquet output, checkpoints and logs (default: %(default)s)",
    )


def client_config(args: argparse.Namespace) -> dict[str, str]:
    """The librdkafka settings named by --config, -X and -b; each overrides the one before."""
    config = {**getattr(args, "client_config_file", {}), **dict(args.client_settings)}
    if args.bootstrap_servers:
        config["bootstrap.servers"] = args.bootstrap_servers
    return config
