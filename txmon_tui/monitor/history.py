"""The Parquet history under `<data-dir>/large/` (layout: txmon_core.large_table).

Every file in the table is whole and holds rows no other file holds. A table written by an older txmon
(Spark's file sink) is read through its `_spark_metadata` log instead: that sink lists every file of a
finished batch in `_spark_metadata/<batch>` (and, every 10 batches, everything so far in
`<batch>.compact`); files of an unfinished batch may lie in the folder but are not data. Reading is
incremental: a reader remembers the files it has binned.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlparse

import orjson

from spark_app.formats import PARQUET_DIR_NAME, PARQUET_PARTITION_COLUMN
from txmon_core import large_table
from txmon_tui.monitor.stats import AmountBins

if TYPE_CHECKING:
    import pyarrow as pa

METADATA_DIR = "_spark_metadata"
LOG_FILE = re.compile(r"^(\d+)(\.compact)?$")
SUPPORTED_VERSION = "v1"
T = TypeVar("T", float, str)


class HistoryError(RuntimeError):
    """The `_spark_metadata` log could not be understood; the message names the file."""


def _read_log_file(path: Path) -> list[dict[str, object]]:
    lines = path.read_bytes().splitlines()
    if not lines:
        return []
    version = lines[0].decode("utf-8", "replace").strip()
    if version != SUPPORTED_VERSION:
        raise HistoryError(f"{path}: log version {version!r}, only {SUPPORTED_VERSION!r} is understood")
    try:
        return [orjson.loads(line) for line in lines[1:] if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise HistoryError(f"{path}: {exc}") from None


def _local_path(uri: str, table_dir: Path) -> Path:
    """A log entry's path as a local file; if the folder moved, the same file under `table_dir`."""
    parsed = urlparse(uri)
    path = Path(unquote(parsed.path if parsed.scheme else uri))
    if path.exists():
        return path
    parent = path.parent.name
    return table_dir / parent / path.name if "=" in parent else table_dir / path.name


def committed_files(table_dir: Path) -> list[Path]:
    """The table's data files, oldest first: every file of the table, or of an older txmon's table
    (written by Spark's file sink) those its `_spark_metadata` log committed."""
    log_dir = Path(table_dir) / METADATA_DIR
    if not log_dir.is_dir():
        return large_table.data_files(Path(table_dir))
    batches: dict[int, Path] = {}
    compacts: dict[int, Path] = {}
    for entry in log_dir.iterdir():
        match = LOG_FILE.match(entry.name)  # skips .crc, temp files and anything else
        if match:
            (compacts if match.group(2) else batches)[int(match.group(1))] = entry
    # The newest compact file holds every entry up to its batch; later batch files follow it.
    start = max(compacts, default=-1)
    sources = ([compacts[start]] if start >= 0 else []) + [batches[b] for b in sorted(batches) if b > start]
    files: dict[str, Path] = {}
    for source in sources:
        for entry in _read_log_file(source):
            uri = str(entry.get("path", ""))
            if entry.get("isDir"):
                continue
            if entry.get("action", "add") == "delete":
                files.pop(uri, None)
            else:
                files[uri] = _local_path(uri, Path(table_dir))
    return list(files.values())


@dataclass
class HistorySummary:
    """What the committed Parquet data holds."""

    rows: int = 0
    files: int = 0
    missing_files: int = 0  # committed but gone from disk
    first_ts: str | None = None
    last_ts: str | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    amount_sum: float = 0.0
    per_day: dict[str, int] = field(default_factory=dict)

    @property
    def mean_amount(self) -> float | None:
        """The mean amount, or None without rows."""
        return self.amount_sum / self.rows if self.rows else None


@dataclass(frozen=True)
class History:
    """The history histogram (fixed bins; the last also holds amounts above its edge) and a summary."""

    edges: list[float]
    counts: list[int]
    summary: HistorySummary


def _file_day(path: Path) -> str | None:
    prefix = f"{PARQUET_PARTITION_COLUMN}="
    parent = path.parent.name
    return parent[len(prefix):] if parent.startswith(prefix) else None


class HistoryReader:
    """Bins and summarises committed Parquet files, reading each file once."""

    def __init__(self, table_dir: Path, bins: AmountBins | None = None) -> None:
        self.table_dir = Path(table_dir)
        self.bins = bins or AmountBins()
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._read: set[Path] = set()
        self._counts = [0] * self.bins.bins
        self._summary = HistorySummary()

    def refresh(self) -> History:
        """Read newly committed files and return the whole history so far."""
        with self._lock:
            committed = committed_files(self.table_dir)
            if not self._read <= set(committed):
                self._reset()  # the data was removed or replaced: start over
            for path in committed:
                if path not in self._read:
                    self._add_file(path)
                    self._read.add(path)
            summary = HistorySummary(**{**self._summary.__dict__, "per_day": dict(self._summary.per_day)})
            return History(self.bins.edges, list(self._counts), summary)

    def _add_file(self, path: Path) -> None:
        # pyarrow costs ~45 MB of memory: loaded only once a committed file is read, never at start.
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        summary = self._summary
        try:
            table = pq.read_table(path, columns=["amount", "ts"])
        except FileNotFoundError:
            summary.missing_files += 1
            return
        summary.files += 1
        if table.num_rows == 0:
            return
        amounts = table.column("amount").cast(pa.float64())
        amounts = amounts.filter(pc.is_finite(amounts))  # nulls and NaN are not amounts
        self._bin(amounts)
        summary.rows += table.num_rows
        if len(amounts) == 0:
            return
        low, high = pc.min_max(amounts).values()
        summary.min_amount = _min(summary.min_amount, low.as_py())
        summary.max_amount = _max(summary.max_amount, high.as_py())
        summary.amount_sum += pc.sum(amounts).as_py() or 0.0
        ts = table.column("ts")
        first, last = pc.min_max(ts).values()
        summary.first_ts = _min(summary.first_ts, first.as_py())
        summary.last_ts = _max(summary.last_ts, last.as_py())
        day = _file_day(path)
        if day is not None:
            summary.per_day[day] = summary.per_day.get(day, 0) + table.num_rows
        else:
            for item in pc.value_counts(pc.utf8_slice_codeunits(ts, 0, 10)).to_pylist():
                if item["values"] is not None:
                    summary.per_day[item["values"]] = summary.per_day.get(item["values"], 0) + item["counts"]

    def _bin(self, amounts: pa.ChunkedArray) -> None:
        """Bin with pyarrow: no Python work per row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        spec = self.bins
        scaled = pc.floor(pc.multiply(pc.subtract(amounts, spec.low), spec.bins / (spec.high - spec.low)))
        index = pc.min_element_wise(pc.max_element_wise(scaled, 0.0), float(spec.bins - 1)).cast(pa.int64())
        for item in pc.value_counts(index).to_pylist():
            if item["values"] is not None:
                self._counts[item["values"]] += item["counts"]


def _min(a: T | None, b: T | None) -> T | None:
    """The smaller of two optional values."""
    return b if a is None else a if b is None else min(a, b)


def _max(a: T | None, b: T | None) -> T | None:
    """The larger of two optional values."""
    return b if a is None else a if b is None else max(a, b)


_readers: dict[tuple[Path, float, float, int], HistoryReader] = {}
_readers_lock = threading.Lock()


def read_history(data_dir: Path, bins: AmountBins | None = None) -> History:
    """The history of `<data_dir>/large/`; repeated calls read only files committed since the last."""
    spec = bins or AmountBins()
    table_dir = Path(data_dir) / PARQUET_DIR_NAME
    key = (table_dir.resolve(), spec.low, spec.high, spec.bins)
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            reader = _readers[key] = HistoryReader(table_dir, spec)
    return reader.refresh()
