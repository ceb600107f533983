"""What the job accepts as a transaction beyond its shape: clock window, currencies, field lengths.

One dataclass owns these limits and their defaults; `txmon-spark` fills it from the [validation] table
of the settings file and its flags, and `transforms.parse_transactions` applies it. No pyspark here.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from txmon_core.options import TableFlag, add_table_flags, flags_over, whole_number
from txmon_core.records.transaction import MAX_AMOUNT
from txmon_core.settings import SettingsError, known_keys

SECTION = "validation"

# A `ts` this far ahead of the job's clock is a wrong clock or forged: one such event would push the
# rules query's watermark past every real one. Five minutes absorbs ordinary clock drift.
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
# A `ts` older than this is not a live transaction. Seven days is Kafka's default retention
# (log.retention.hours = 168): the oldest record a default `transactions` topic can still hold, so a
# job that was down for less than that keeps every event it missed.
DEFAULT_MAX_AGE = timedelta(days=7)
DEFAULT_CURRENCIES = ("RON",)
# Field caps, in characters. An IBAN has at most 34 characters and the producers' tx_ids 26; 64 leaves
# room for a UUID or a card token. A card scheme's merchant name field holds 22 to 40 characters; 200
# keeps long Unicode names. Even if every character were escaped to six bytes, an alert stays under 3 KB.
DEFAULT_MAX_TX_ID_CHARS = 64
DEFAULT_MAX_ACCOUNT_ID_CHARS = 64
DEFAULT_MAX_MERCHANT_CHARS = 200
# A cap above this could let one alert (three capped fields, each character escaped to six bytes)
# approach the Kafka client's max.request.size (1 MiB) again.
MAX_FIELD_CAP = 10_000
# Durations beyond a century are typos, and would overflow the microsecond arithmetic of the check.
MAX_DURATION = timedelta(days=36_500)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1),
          "h": timedelta(hours=1), "d": timedelta(days=1)}
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Validation:
    """The limits a valid transaction keeps; every field but `max_amount` is a key of [validation].

    `ts` may be at most `max_clock_skew` ahead of the job's clock (read per record: transforms.with_clock)
    and at most `max_age` behind it; `currency` one of `currencies`; tx_id, account_id and merchant at most
    their `max_*_chars` characters.
    """

    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    max_age: timedelta = DEFAULT_MAX_AGE
    currencies: tuple[str, ...] = DEFAULT_CURRENCIES
    max_tx_id_chars: int = DEFAULT_MAX_TX_ID_CHARS
    max_account_id_chars: int = DEFAULT_MAX_ACCOUNT_ID_CHARS
    max_merchant_chars: int = DEFAULT_MAX_MERCHANT_CHARS
    max_amount: float = field(default=MAX_AMOUNT)

    def __post_init__(self) -> None:
        problems = []
        for name, least in (("max_clock_skew", timedelta(0)), ("max_age", timedelta(milliseconds=1))):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or not least <= value <= MAX_DURATION:
                problems.append(f"{name} must be a duration from {format_duration(least)} "
                                f"to {MAX_DURATION.days}d")
        if (not isinstance(self.currencies, tuple) or not self.currencies
                or not all(isinstance(c, str) and _CURRENCY.fullmatch(c) for c in self.currencies)):
            problems.append("currencies must be one or more ISO 4217 codes (three capital letters)")
        for name in ("max_tx_id_chars", "max_account_id_chars", "max_merchant_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FIELD_CAP:
                problems.append(f"{name} must be a whole number from 1 to {MAX_FIELD_CAP}")
        if problems:
            raise SettingsError(f"[{SECTION}]: " + "; ".join(problems))

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Validation:
        """The limits of a [validation] table (missing keys keep their defaults); SettingsError if bad."""
        values = known_keys(SECTION, table, (f.name for f in fields(cls) if f.name != "max_amount"))
        for name in ("max_clock_skew", "max_age"):
            if name in values:
                try:
                    values[name] = parse_duration(values[name])
                except ValueError as exc:
                    raise SettingsError(f"[{SECTION}] {name}: {exc}") from None
        if "currencies" in values:
            currencies = values["currencies"]
            if not isinstance(currencies, list):
                raise SettingsError(f"[{SECTION}] currencies: expected a list such as [\"RON\", \"EUR\"]")
            values["currencies"] = tuple(currencies)
        return cls(**values)


def parse_duration(text: object) -> timedelta:
    """"5m" → 5 minutes: a number and one unit of ms, s, m, h, d; ValueError saying what is wrong."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a duration such as 300s, 5m, 12h or 7d, got {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days}d")
    return value


def format_duration(value: timedelta) -> str:
    """A duration in the largest unit that states it exactly: 5 minutes → "5m", 90 s → "90s"."""
    millis = value // timedelta(milliseconds=1)
    if millis == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit] // timedelta(milliseconds=1)
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def duration(text: str) -> timedelta:
    """An argparse type for a duration (parse_duration)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def currency_list(text: str) -> tuple[str, ...]:
    """An argparse type for a comma-separated list of currency codes, e.g. "RON,EUR"."""
    codes = tuple(dict.fromkeys(code.strip() for code in text.split(",")))
    bad = [code for code in codes if not _CURRENCY.fullmatch(code)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"expected ISO 4217 codes (three capital letters) separated by commas, got {text!r}")
    return codes


def field_cap(text: str) -> int:
    """An argparse type for a field cap: a whole number of characters from 1 to MAX_FIELD_CAP."""
    value = whole_number(text)
    if not 1 <= value <= MAX_FIELD_CAP:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_FIELD_CAP}, got {text!r}")
    return value


_DEFAULTS = Validation()
FLAGS = (
    TableFlag("--max-clock-skew", "max_clock_skew", duration,
              f"how far a ts may be ahead of the job's clock ({format_duration(_DEFAULTS.max_clock_skew)})",
              "DURATION"),
    TableFlag("--max-age", "max_age", duration,
              f"how far a ts may be behind the job's clock ({format_duration(_DEFAULTS.max_age)})",
              "DURATION"),
    TableFlag("--currencies", "currencies", currency_list,
              f"accepted currencies, comma-separated; the thresholds apply to the amount as it is, whatever "
              f"its currency ({','.join(_DEFAULTS.currencies)})", "CODES"),
    TableFlag("--max-tx-id-chars", "max_tx_id_chars", field_cap,
              f"longest tx_id, in characters ({_DEFAULTS.max_tx_id_chars})", "N"),
    TableFlag("--max-account-id-chars", "max_account_id_chars", field_cap,
              f"longest account_id, in characters ({_DEFAULTS.max_account_id_chars})", "N"),
    TableFlag("--max-merchant-chars", "max_merchant_chars", field_cap,
              f"longest merchant, in characters ({_DEFAULTS.max_merchant_chars})", "N"),
)


def add_validation_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags that override [validation]: --max-clock-skew, --max-age, --currencies, caps."""
    add_table_flags(parser, "validation", "override the [validation] table of the settings file "
                    "(defaults in parentheses); a transaction outside these limits is a dead letter with its "
                    "reason", FLAGS)


def validation_settings(table: Mapping[str, Any], args: argparse.Namespace | None = None) -> Validation:
    """The [validation] table's limits, then every flag that was given on top."""
    return flags_over(Validation.from_table(table), args, FLAGS)
