"""The account rules' settings: velocity and small-then-large, from txmon.toml's [rules] and flags.

One dataclass owns the settings and their defaults; the Spark job applies them, the producer sizes its
injected patterns by them and the monitor can show them. No pyspark and no Textual here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from txmon_core.options import (
    TableFlag,
    add_table_flags,
    flags_over,
    non_negative_float,
    positive_float,
    positive_int,
)
from txmon_core.records.alert import format_number
from txmon_core.settings import SettingsError, known_keys, load, section

SECTION = "rules"


@dataclass(frozen=True)
class RuleSettings:
    """What the account rules look for; every field is a key of the [rules] table.

    Velocity: `velocity_count` or more flagged transactions (above the large threshold) of one account
    whose event times lie within `velocity_window` seconds raise one `velocity` alert; the account
    raises no other until `velocity_window` seconds of event time have passed.
    Small-then-large: a transaction under `small_amount` RON followed within `pattern_window` seconds
    by one above the large threshold on the same account raises a `pattern` alert.
    Transactions more than `lateness` seconds behind the newest event time seen are too late for the
    rules (Spark's watermark); state of an account ends `lateness` + the longer window after its
    last transaction that matters.
    """

    enabled: bool = True
    velocity_count: int = 3
    velocity_window: float = 60.0
    small_amount: float = 1.0
    pattern_window: float = 60.0
    lateness: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.velocity_count, bool) or not isinstance(self.velocity_count, int):
            problems.append("velocity_count must be a whole number")
        elif self.velocity_count < 1:
            problems.append("velocity_count must be at least 1")
        for name in ("velocity_window", "small_amount", "pattern_window"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < math.inf:
                problems.append(f"{name} must be a number > 0")
        if not _is_number(self.lateness) or not 0 <= self.lateness < math.inf:
            problems.append("lateness must be a number >= 0")
        if not isinstance(self.enabled, bool):
            problems.append("enabled must be true or false")
        if problems:
            raise SettingsError(f"[{SECTION}]: " + "; ".join(problems))

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> RuleSettings:
        """The settings of a [rules] table (missing keys keep their defaults); SettingsError if bad."""
        values = known_keys(SECTION, table, (f.name for f in fields(cls)))
        for name in ("velocity_window", "small_amount", "pattern_window", "lateness"):
            if name in values and _is_number(values[name]):
                values[name] = float(values[name])  # TOML writes 60 as an integer
        return cls(**values)

    def velocity_rule(self, large_threshold: float) -> str:
        """The `rule` text of a velocity alert, e.g. "count(amount>500)>=3 in 60s"."""
        return (f"count(amount>{format_number(large_threshold)})>={self.velocity_count} "
                f"in {format_number(self.velocity_window)}s")

    def pattern_rule(self, large_threshold: float) -> str:
        """The `rule` text of a pattern alert, e.g. "amount<1 then amount>500 in 60s"."""
        return (f"amount<{format_number(self.small_amount)} then amount>{format_number(large_threshold)} "
                f"in {format_number(self.pattern_window)}s")

    def describe(self, large_threshold: float) -> str:
        """One line for logs and the monitor: both rules, or that they are off."""
        if not self.enabled:
            return "rules off"
        return (f"rules: velocity {self.velocity_rule(large_threshold)}; "
                f"pattern {self.pattern_rule(large_threshold)}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_DEFAULTS = RuleSettings()
FLAGS = (
    TableFlag("--rules", "enabled", None, "run the velocity and small-then-large rules (default: on)",
              dest="rules_enabled"),
    TableFlag("--velocity-count", "velocity_count", positive_int,
              f"flagged transactions of one account that raise a velocity alert ({_DEFAULTS.velocity_count})",
              "N"),
    TableFlag("--velocity-window", "velocity_window", positive_float,
              f"event-time window of the velocity rule ({_DEFAULTS.velocity_window:g})", "SECONDS"),
    TableFlag("--small-amount", "small_amount", positive_float,
              f"amounts strictly under this start a small-then-large pattern ({_DEFAULTS.small_amount:g})",
              "RON"),
    TableFlag("--pattern-window", "pattern_window", positive_float,
              f"how soon the large transaction must follow the small one ({_DEFAULTS.pattern_window:g})",
              "SECONDS"),
    TableFlag("--rules-lateness", "lateness", non_negative_float,
              f"transactions this far behind the newest event time are ignored by the rules "
              f"({_DEFAULTS.lateness:g})", "SECONDS"),
)


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags that override [rules]: --rules/--no-rules, --velocity-count, --velocity-window, …"""
    add_table_flags(parser, "account rules",
                    "override the [rules] table of the settings file (defaults in parentheses)", FLAGS)


def rule_settings(table: Mapping[str, Any], args: argparse.Namespace | None = None) -> RuleSettings:
    """The [rules] table's settings, then every flag that was given on top."""
    return flags_over(RuleSettings.from_table(table), args, FLAGS)


def configured_rules(path: Path | None = None) -> RuleSettings:
    """The rules a settings file sets (the default file when `path` is None; defaults without one)."""
    return RuleSettings.from_table(section(load(path), SECTION))
