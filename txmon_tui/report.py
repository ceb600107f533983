"""`txmon-tui report`: the history histogram and a summary of the committed Parquet data, as text.

For ssh and cron: no screen, no Textual; colour only on a terminal and never with NO_COLOR set.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import plotext as plt

from spark_app.formats import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD, PARQUET_DIR_NAME
from txmon_tui.history import History, HistoryError, HistoryReader
from txmon_tui.stats import AmountBins


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


def main(data_dir: Path) -> int:
    """Print the report; 0 when there is data, 1 when nothing is committed yet, 2 on an unreadable log."""
    try:
        text = render(data_dir, colour=use_colour(sys.stdout))
    except HistoryError as exc:
        print(f"txmon-tui report: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0 if not text.startswith("no committed Parquet data") else 1
