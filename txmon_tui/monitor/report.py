"""`txmon-tui report`: the history histogram and a summary of the committed Parquet data, as text.

For ssh and cron: no screen, no Textual; colour only on a terminal and never with NO_COLOR set.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import plotext as plt

from spark_app.formats import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD, PARQUET_DIR_NAME, safe_text
from txmon_core.settings import SettingsError, resolve
from txmon_sinks.config import storage_config
from txmon_sinks.store import AlertStore, StoreError, safe_url, sqlite_path
from txmon_tui.monitor.history import History, HistoryError, HistoryReader
from txmon_tui.monitor.stats import AmountBins


def use_colour(stream: object = sys.stdout) -> bool:
    """Colour only on a terminal and when NO_COLOR is not set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return "NO_COLOR" not in os.environ and callable(isatty) and bool(isatty())


def histogram_text(
    history: History,
    large_threshold: float = DEFAULT_LARGE_THRESHOLD,
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD,
    width: int = 80,
    height: int = 20,
    colour: bool = False,
) -> str:
    """A plotext bar chart of the history bins with the two thresholds as vertical lines."""
    edges = history.edges
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.bar(centres, history.counts, width=0.8)
    for threshold in (large_threshold, alert_threshold):
        if edges[0] <= threshold <= edges[-1]:
            plt.vline(threshold, "red" if colour else None)
    plt.title(f"flagged amounts (RON), last bin includes > {edges[-2]:g}; lines at {large_threshold:g} "
              f"and {alert_threshold:g}")
    plt.xlabel("amount")
    plt.ylabel("transactions")
    if not colour:
        plt.theme("clear")
    text = plt.build()
    plt.clear_figure()
    return text if colour else plt.uncolorize(text)


def summary_text(history: History) -> str:
    """Rows, date range, min/max/mean and per-day counts, one fact per line."""
    s = history.summary
    lines = [f"rows:        {s.rows:,} in {s.files:,} committed files"]
    if s.missing_files:
        lines.append(f"missing:     {s.missing_files:,} committed files are gone from disk")
    if s.rows:
        lines.append(f"date range:  {s.first_ts} .. {s.last_ts}")
        mean = s.mean_amount
        lines.append(f"amount:      min {s.min_amount:,.2f}  max {s.max_amount:,.2f}  "
                     f"mean {mean:,.2f}" if mean is not None else "amount:      -")
        lines.append("per day:")
        lines.extend(f"  {day}  {count:>10,}" for day, count in sorted(history.summary.per_day.items()))
    return "\n".join(lines)


def render(
    data_dir: Path,
    large_threshold: float = DEFAULT_LARGE_THRESHOLD,
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD,
    width: int | None = None,
    colour: bool = False,
) -> str:
    """The whole report for `<data_dir>/large/` as text."""
    table_dir = Path(data_dir) / PARQUET_DIR_NAME
    bins = AmountBins(large_threshold, max(alert_threshold, large_threshold) + 100.0, 25)
    history = HistoryReader(table_dir, bins).refresh()
    if history.summary.rows == 0:
        return f"no committed Parquet data under {table_dir}\n"
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    chart = histogram_text(history, large_threshold, alert_threshold, width=width, colour=colour)
    return f"{chart}\n\n{summary_text(history)}\n"


def main(data_dir: Path, large_threshold: float = DEFAULT_LARGE_THRESHOLD,
         alert_threshold: float = DEFAULT_ALERT_THRESHOLD) -> int:
    """Print the report; 0 when there is data, 1 when nothing is committed yet, 2 on an unreadable log."""
    try:
        text = render(data_dir, large_threshold, alert_threshold, colour=use_colour(sys.stdout))
    except HistoryError as exc:
        print(f"txmon-tui report: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0 if not text.startswith("no committed Parquet data") else 1


# ---- `txmon-tui report --alerts`: the alerts stored by alert delivery ([storage]) -------------------

def alerts_text(store: AlertStore, where: str, account: str | None = None, level: str | None = None,
                since: float | None = None, until: float | None = None, limit: int = 50) -> str:
    """Counts per level, then the newest matching alerts, one a line."""
    counts = store.counts_per_level(account=account, since=since, until=until)
    if level is not None:
        counts = {name: n for name, n in counts.items() if name == level}
    filters = [f"{name}={value}" for name, value in (("account", account), ("level", level)) if value]
    filters += [f"{name} {_utc(value)}" for name, value in (("from", since), ("before", until)) if value]
    lines = [f"alerts in {where}" + (f" ({', '.join(filters)})" if filters else "")]
    lines += [f"  {safe_text(name):<10} {count:>10,}" for name, count in sorted(counts.items())]
    lines.append(f"  {'total':<10} {sum(counts.values()):>10,}")
    rows = store.alerts(account=account, level=level, since=since, until=until, limit=limit)
    if rows:
        lines.append(f"newest {len(rows):,}:")
        lines.append(f"  {'event time (UTC)':<19}  {'level':<8} {'amount':>10}  {'account':<24}  "
                     f"{'merchant':<16}  tx id")
        # Stored text is record text: through safe_text, as decoding does, before it reaches a terminal.
        lines += [f"  {_utc(row.event_time):<19}  {safe_text(row.level):<8} {_amount(row.amount):>10}  "
                  f"{safe_text(row.account_id) or '-':<24}  {(safe_text(row.merchant) or '-')[:16]:<16}  "
                  f"{safe_text(row.tx_id)}"
                  for row in rows]
    return "\n".join(lines) + "\n"


def _utc(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _amount(amount: float | None) -> str:
    return "-" if amount is None else f"{amount:,.2f}"


def alerts_main(data_dir: Path, settings: Mapping[str, Any] | None, account: str | None = None,
                level: str | None = None, since: float | None = None, until: float | None = None,
                limit: int = 50) -> int:
    """Print the stored alerts; 0 when there are some, 1 when none are stored, 2 when unreadable.

    `settings`: what --settings read, or None for the default txmon.toml when present.
    """
    try:
        storage = storage_config(resolve(settings), Path(data_dir))
    except SettingsError as exc:
        print(f"txmon-tui report: error: {exc}", file=sys.stderr)
        return 2
    if storage is None:
        print("txmon-tui report: error: alert storage is off ([storage] enabled = false)", file=sys.stderr)
        return 2
    database = sqlite_path(storage.url)
    if database is not None and not database.exists():
        sys.stdout.write(f"no alerts stored yet: {database} does not exist\n")
        return 1
    try:
        store = AlertStore(storage.url)
        try:
            text = alerts_text(store, safe_url(storage.url), account, level, since, until, limit)
            stored = sum(store.counts_per_level().values())
        finally:
            store.close()
    except StoreError as exc:
        print(f"txmon-tui report: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0 if stored else 1
