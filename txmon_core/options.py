"""Command-line options declared once for every txmon command that takes them.

Kafka (-b, -X, -F, --partitions), --data-dir, --version, the thresholds and their cross-check, the flags
that override a settings table ([rules], [validation]: `TableFlag`), and the argparse types they use;
each command attaches what it needs. Also the one error style and the exit codes every command
shares: `txmon-x: error: …` on stderr; 0 done, 1 a runtime error, 2 a usage error (argparse's own),
3 a headless run whose pipeline stalled, 4 a headless run whose pipeline could not start.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from txmon_core import __version__
from txmon_core.paths import default_data_dir
from txmon_core.records.alert import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_core.records.transaction import MAX_AMOUNT
from txmon_core.settings import SettingsError, section

BOOTSTRAP_ENV = "TXMON_BOOTSTRAP_SERVERS"
KAFKA_SECTION = "kafka"
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_STALLED, EXIT_NOT_STARTED = 0, 1, 2, 3, 4
SettingsT = TypeVar("SettingsT")


def fail(prog: str, message: str) -> int:
    """Print `prog: error: message` on stderr (the style of every txmon command) and return EXIT_RUNTIME."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return EXIT_RUNTIME


def client_setting(text: str) -> tuple[str, str]:
    """Parse one `-X key=value` client setting (as kcat spells them)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"-X expects key=value, got {text!r}")
    return key.strip(), value


def config_file(text: str) -> dict[str, str]:
    """An argparse type for -F/--client-config FILE: `key=value` client settings, one a line, `#` comments."""
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


def _parsed(text: str, parse: Callable[[str], Any], kind: str) -> Any:
    """`parse(text)`, or the argparse error "expected KIND, got TEXT"."""
    try:
        return parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None


def number(text: str) -> float:
    """An argparse type for a number (inf and nan included: callers bound it)."""
    return float(_parsed(text, float, "a number"))


def whole_number(text: str) -> int:
    """An argparse type for a whole number."""
    return int(_parsed(text, int, "a whole number"))


def positive_float(text: str) -> float:
    """An argparse type for a number > 0."""
    value = number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type for a number >= 0."""
    value = number(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type for a whole number > 0."""
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


def amount_cents(text: str) -> int:
    """An argparse type for an amount in RON (> 0, at most 2 decimals), returned in integer cents."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected an amount such as 12.50, got {text!r}") from None
    cents = amount * 100
    if not amount.is_finite() or cents != cents.to_integral_value():
        raise argparse.ArgumentTypeError(f"expected an amount with at most 2 decimals, got {text!r}")
    if cents <= 0:
        raise argparse.ArgumentTypeError(f"expected an amount > 0, got {text!r}")
    return int(cents)


def threshold_amount(text: str) -> float:
    """An argparse type for a threshold: RON > 0 with at most 2 decimals, as amounts are (cents)."""
    return amount_cents(text) / 100


class _VersionAction(argparse.Action):
    """--version: the program's version line, then whatever `details()` adds (computed only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 details: Callable[[], list[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.details = details

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        lines = [f"{parser.prog} {__version__}", *(self.details() if self.details else [])]
        print("\n".join(lines), flush=True)  # on stdout, as argparse's own version action does
        parser.exit()


def add_version(parser: argparse.ArgumentParser, details: Callable[[], list[str]] | None = None) -> None:
    """Add --version (the txmon version, then the lines `details()` gives, e.g. library versions)."""
    parser.add_argument("--version", action=_VersionAction, details=details,
                        help="show the version and exit")


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    """Add -b/--bootstrap-servers (env TXMON_BOOTSTRAP_SERVERS), repeatable -X key=value, -F FILE.

    None of them is required: bootstrap.servers may also come from [kafka] of the settings, so each
    command checks, once it has merged everything, with `require_bootstrap`.
    """
    parser.add_argument(
        "-b",
        "--bootstrap-servers",
        metavar="HOST:PORT",
        default=os.environ.get(BOOTSTRAP_ENV),
        help=f"Kafka bootstrap servers (env {BOOTSTRAP_ENV}; else bootstrap.servers of [kafka] in the "
        "settings)",
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
        "-F",
        "--client-config",
        "--config",  # the name of earlier releases, kept so that scripts keep working
        dest="client_config_file",
        metavar="FILE",
        type=config_file,
        default={},
        help="read Kafka client settings (key=value lines) from FILE, e.g. passwords, which must not be "
        "given as -X where other users can see command lines; overrides [kafka] of the settings; -X and "
        "-b override it (--config is the old name)",
    )


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Add --data-dir (default: the user's XDG data folder)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="folder for Parquet output, checkpoints and logs (default: %(default)s)",
    )


def add_threshold_options(parser: argparse.ArgumentParser, *, alert: bool = True) -> None:
    """Add --large-threshold and (unless `alert` is False) --alert-threshold, in RON.

    A command that takes both checks them together with `check_thresholds`.
    """
    parser.add_argument(
        "--large-threshold",
        type=threshold_amount,
        default=DEFAULT_LARGE_THRESHOLD,
        metavar="RON",
        help="amounts strictly above this are flagged `large` (default %(default)g)",
    )
    if alert:
        parser.add_argument(
            "--alert-threshold",
            type=threshold_amount,
            default=DEFAULT_ALERT_THRESHOLD,
            metavar="RON",
            help="amounts strictly above this are flagged `alert` (default %(default)g)",
        )


def check_thresholds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error unless --large-threshold is below --alert-threshold and below the largest amount."""
    if not args.large_threshold < args.alert_threshold:
        parser.error(f"--large-threshold ({args.large_threshold:g}) must be below "
                     f"--alert-threshold ({args.alert_threshold:g})")
    if args.large_threshold >= MAX_AMOUNT:
        parser.error(f"--large-threshold must be below {MAX_AMOUNT:g}, the largest valid amount")


@dataclass(frozen=True)
class TableFlag:
    """A flag that overrides one key of a settings table; left at None when not given."""

    flag: str  # e.g. --velocity-count
    key: str  # the settings dataclass's field, e.g. velocity_count
    type: Callable[[str], Any] | None  # None: an on/off flag (--x / --no-x)
    help: str
    metavar: str | None = None
    dest: str | None = None  # the namespace's name, when the flag's own would be ambiguous

    @property
    def destination(self) -> str:
        """Where argparse puts the value."""
        return self.dest or self.flag.removeprefix("--").replace("-", "_")


def add_table_flags(parser: argparse.ArgumentParser, title: str, description: str,
                    flags: Sequence[TableFlag]) -> None:
    """Add a group of flags that override a settings table (read back with `flags_over`)."""
    group = parser.add_argument_group(title, description)
    for flag in flags:
        if flag.type is None:
            group.add_argument(flag.flag, dest=flag.destination, action=argparse.BooleanOptionalAction,
                               default=None, help=flag.help)
        else:
            group.add_argument(flag.flag, dest=flag.destination, type=flag.type, default=None,
                               metavar=flag.metavar, help=flag.help)


def flags_over(settings: SettingsT, args: argparse.Namespace | None, flags: Sequence[TableFlag]) -> SettingsT:
    """`settings` (a dataclass read from a settings table) with each of `flags` that was given on top."""
    if args is None:
        return settings
    given = {flag.key: getattr(args, flag.destination) for flag in flags
             if getattr(args, flag.destination, None) is not None}
    return replace(settings, **given)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML reads `security.protocol = "SSL"` as nested tables: join the keys back with dots."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def kafka_table_problems(table: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for each value of a [kafka] table that is not text, a number or true/false."""
    return [(key, f"[{KAFKA_SECTION}] {key}: expected text, a number or true/false, "
                  f"not {type(value).__name__}")
            for key, value in _flatten(table).items()
            if isinstance(value, list | dict) or not isinstance(value, str | int | float | bool)]


def kafka_settings(settings: Mapping[str, Any]) -> dict[str, str]:
    """The librdkafka settings of the [kafka] table, as librdkafka wants them (text; true/false).

    Keys are librdkafka's own (`bootstrap.servers`, `security.protocol`, `sasl.username`, …); TOML's
    dotted keys and quoted keys both work. SettingsError names a value that cannot be a setting.
    """
    table = section(settings, KAFKA_SECTION)
    if problems := kafka_table_problems(table):
        raise SettingsError(problems[0][1])
    return {key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in _flatten(table).items()}


def client_config(args: argparse.Namespace, settings: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The librdkafka settings of [kafka] in `settings`, -F/--client-config, -X and -b (or its env var);
    each overrides the one before. SettingsError when the [kafka] table is bad."""
    config = {**kafka_settings(settings or {}), **getattr(args, "client_config_file", {}),
              **dict(args.client_settings)}
    if args.bootstrap_servers:
        config["bootstrap.servers"] = args.bootstrap_servers
    return config


def require_bootstrap(parser: argparse.ArgumentParser, config: Mapping[str, str]) -> None:
    """A usage error unless bootstrap.servers is known from -b, the env or the settings."""
    if not config.get("bootstrap.servers"):
        parser.error(f"-b/--bootstrap-servers is required (or set {BOOTSTRAP_ENV}, or bootstrap.servers "
                     f"in [{KAFKA_SECTION}] of the settings)")
