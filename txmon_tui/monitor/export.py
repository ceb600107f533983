"""Exporting what the feed shows (its rows, or the grouped view) to a CSV or JSON file.

No Textual: the app hands the rows it read from the model to a thread worker that calls `write_export`.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from txmon_tui.monitor.feed import FeedRow
from txmon_tui.monitor.grouping import AlertGroup

FORMATS = ("csv", "json")
EXPORT_DIR_NAME = "exports"  # under the data dir
FEED_FIELDS = ("tx_id", "account_id", "merchant", "amount", "currency", "ts", "level", "rule", "detected_at",
               "latency_s")
GROUP_FIELDS = ("account_id", "level", "rule", "count", "first_seen", "last_seen", "max_amount", "currency")
# Spreadsheets run a cell that starts with one of these as a formula; record fields come from Kafka, so
# such text is written with a leading apostrophe (CSV only; JSON keeps every value as it came).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def feed_records(rows: Iterable[FeedRow]) -> list[dict[str, Any]]:
    """The feed's rows as plain records, newest first."""
    return [
        {"tx_id": row.alert.tx_id, "account_id": row.alert.account_id, "merchant": row.alert.merchant,
         "amount": row.alert.amount, "currency": row.alert.currency, "ts": row.alert.ts,
         "level": row.alert.level, "rule": row.alert.rule, "detected_at": row.alert.detected_at,
         "latency_s": None if row.latency is None else round(row.latency, 3)}
        for row in rows
    ]


def group_records(groups: Iterable[AlertGroup]) -> list[dict[str, Any]]:
    """The grouped view's rows as plain records, latest updated first."""
    return [
        {"account_id": g.account_id, "level": g.level, "rule": g.rule, "count": g.count,
         "first_seen": g.first_seen, "last_seen": g.last_seen, "max_amount": g.max_amount,
         "currency": g.currency}
        for g in groups
    ]


def export_path(directory: Path, view: str, fmt: str, now: float) -> Path:
    """A new file name under `directory` for an export of `view` (feed or groups) taken at `now`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = directory / f"txmon-{view}-{stamp}.{fmt}"
    n = 1
    while path.exists():  # two exports within a second: never overwrite the first
        path = directory / f"txmon-{view}-{stamp}-{n}.{fmt}"
        n += 1
    return path


def _safe_cell(value: object) -> object:
    if value is None:
        return ""  # unknown (e.g. a latency that could not be measured)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_export(path: Path, records: Sequence[dict[str, Any]], fields: Sequence[str], fmt: str) -> Path:
    """Write the records to `path` as CSV (a header row, then one row each) or a JSON array; return `path`.

    Written to a temporary file renamed into place, so a reader never sees half an export.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, got {fmt!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        if fmt == "json":
            partial.write_bytes(orjson.dumps([{name: r.get(name) for name in fields} for r in records],
                                             option=orjson.OPT_INDENT_2) + b"\n")
        else:
            with open(partial, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(fields)
                for record in records:
                    writer.writerow([_safe_cell(record.get(name)) for name in fields])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
