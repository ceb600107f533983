"""What the monitor starts: the whole pipeline on its embedded broker, or attached to a named one.

With a broker named (-b, TXMON_BOOTSTRAP_SERVERS or [kafka] of the settings) the monitor attaches: it
starts no producer and no Spark job unless asked (--with-producer, --with-spark or [monitor]), and
while it starts none it is read-only. No Textual here: the CLI and the tests use it alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from txmon_core.settings import SettingsError, section

MONITOR_SECTION = "monitor"
MONITOR_KEYS = ("with_producer", "with_spark", "read_only")  # each true or false
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class AttachError(ValueError):
    """The options ask for something contradictory; the message names the options."""


@dataclass(frozen=True)
class Plan:
    """What the monitor runs: children, and whether it may write to the cluster."""

    attached: bool  # a broker was named: no embedded broker
    run_producer: bool
    run_spark: bool
    read_only: bool


def monitor_table_problems(table: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(key, problem) for each thing wrong in a [monitor] table."""
    problems: list[tuple[str | None, str]] = []
    for key, value in table.items():
        if key not in MONITOR_KEYS:
            known = ", ".join(MONITOR_KEYS)
            problems.append((key, f"[{MONITOR_SECTION}] unknown key {key!r} (known: {known})"))
        elif not isinstance(value, bool):
            problems.append((key, f"[{MONITOR_SECTION}] {key}: expected true or false, "
                                  f"not {type(value).__name__}"))
    return problems


def monitor_settings(settings: Mapping[str, Any]) -> dict[str, bool]:
    """The [monitor] table with every key present (false when absent); SettingsError when bad."""
    table = section(settings, MONITOR_SECTION)
    if problems := monitor_table_problems(table):
        raise SettingsError(problems[0][1])
    return {key: bool(table.get(key, False)) for key in MONITOR_KEYS}


def plan(bootstrap: str | None, *, with_producer: bool, with_spark: bool, no_producer: bool,
         no_spark: bool, read_only: bool) -> Plan:
    """Decide what runs. `with_*` and `read_only` combine the flags and [monitor]; `no_*` are the flags
    --no-producer/--no-spark, which only matter for the embedded pipeline (attached, nothing starts
    unless asked)."""
    if bootstrap is None:
        if read_only:
            raise AttachError("--read-only watches a broker you name (-b, TXMON_BOOTSTRAP_SERVERS or "
                              "[kafka] bootstrap.servers); without one the monitor runs its own pipeline")
        return Plan(attached=False, run_producer=not no_producer, run_spark=not no_spark, read_only=False)
    run_producer = with_producer and not no_producer
    run_spark = with_spark and not no_spark
    if read_only and (run_producer or run_spark):
        asked = " and ".join(name for name, on in (("--with-producer", run_producer),
                                                    ("--with-spark", run_spark)) if on)
        raise AttachError(f"--read-only starts nothing: not with {asked} (flags or [monitor])")
    return Plan(attached=True, run_producer=run_producer, run_spark=run_spark,
                read_only=read_only or not (run_producer or run_spark))


def since_ms(text: str, now: float | None = None) -> int:
    """`--since`: a duration back from now (`90s`, `10m`, `1h`, `2d`, `1h30m`) or an ISO 8601 time (UTC
    unless it says otherwise), as Unix milliseconds. ValueError says what was expected."""
    text = text.strip()
    now = time.time() if now is None else now
    parts = _DURATION.findall(text.lower())
    if parts and "".join(f"{n}{u}" for n, u in parts) == re.sub(r"\s+", "", text.lower()):
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
        return int((now - seconds) * 1000)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected a duration such as 10m, 1h, 2d or an ISO 8601 time such as "
                         f"2026-12-05T09:00Z, got {text!r}") from None
    at = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if at.timestamp() > now:
        raise ValueError(f"{text!r} is in the future")
    return int(at.timestamp() * 1000)
