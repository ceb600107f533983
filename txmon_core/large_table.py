"""The Parquet table of large transactions, `<data-dir>/large/`: its layout and its exactly-once commit.

Layout: `large/event_date=YYYY-MM-DD/part-<first>-<last>.parquet`, one file per event date for each
flush, where `<first>`-`<last>` are the (zero-padded) micro-batch ids of the streaming query whose rows
it holds. A file appears whole or not at all: it is written under `large/_staging/` and renamed into
place, so every reader that lists the folder (Spark, pyarrow, DuckDB: all skip `_`-prefixed names) sees
complete files only, with no log of its own to honour.

Exactly once: `large/_committed` holds the last batch id whose rows are all in the table, written
(atomically) after a flush's renames. A file whose first batch is past it is left over from a flush
that did not finish; the writer deletes such files before it writes again, and rows of a batch at or
below it are never written twice. The streaming job re-derives the rows of batches that its checkpoint
committed but the table does not cover yet (spark_app.flagged), so the table never misses any.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from txmon_core.records.transaction import FIELDS

if TYPE_CHECKING:
    import pyarrow as pa

DIR_NAME = "large"
PARTITION_COLUMN = "event_date"
# One row per transaction above the large threshold, partitioned by the UTC date of its event time:
# the transaction's fields (`ts` the text it carried, `amount` a double), `event_time` the parsed
# instant (UTC) and its level.
COLUMNS = (*FIELDS, "event_time", "level", PARTITION_COLUMN)
STAGING = "_staging"
COMMITTED = "_committed"
# Spark's old file-sink log: a table that has one was written by an older txmon (see legacy_layout).
SPARK_METADATA = "_spark_metadata"
FILE_NAME = re.compile(r"^part-(\d{10})-(\d{10})\.parquet$")


def file_name(first: int, last: int) -> str:
    """The name of a flush's file in each date folder."""
    return f"part-{first:010d}-{last:010d}.parquet"


def legacy_layout(table_dir: Path) -> str | None:
    """Why the table cannot be continued (written by Spark's file sink, an older txmon), or None."""
    if (table_dir / SPARK_METADATA).is_dir():
        return (
            f"{table_dir} was written by an older txmon (it has {SPARK_METADATA}/): move it and the data "
            "dir's checkpoints/ aside, or use a new --data-dir"
        )
    return None


def committed_batch(table_dir: Path) -> int:
    """The last batch id whose rows are all in the table (-1 when none)."""
    try:
        return int((table_dir / COMMITTED).read_text().strip() or -1)
    except FileNotFoundError:
        return -1


def data_files(table_dir: Path) -> list[Path]:
    """The table's complete data files, oldest batches first (a reader's view: every file listed)."""
    found: list[tuple[int, str, Path]] = []
    if not table_dir.is_dir():
        return []
    for folder in table_dir.iterdir():
        if not folder.name.startswith(f"{PARTITION_COLUMN}=") or not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = FILE_NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), folder.name, path))
    return [path for _, _, path in sorted(found)]


def has_rows(table_dir: Path) -> bool:
    """True when the table holds any data file."""
    return bool(data_files(table_dir))


class LargeTable:
    """Writes flushes of rows to the table, exactly once per batch id (one writer at a time)."""

    def __init__(self, table_dir: Path) -> None:
        self.dir = table_dir
        self.lock = threading.Lock()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.committed = committed_batch(table_dir)
        self._drop_unfinished()

    def _drop_unfinished(self) -> None:
        # Files of a flush that never reached _committed would repeat rows the next flush writes again.
        for path in data_files(self.dir):
            match = FILE_NAME.match(path.name)
            if match and int(match.group(1)) > self.committed:
                path.unlink()
        staging = self.dir / STAGING
        if staging.is_dir():
            for leftover in staging.iterdir():
                leftover.unlink()

    def write(self, first: int, last: int, rows: pa.Table | None) -> int:
        """Commit the rows of batches first..last (a `PARTITION_COLUMN` string column); return files written.

        None (batches without flagged rows) only moves the committed mark. Batches at or below the
        committed one are skipped by the caller; this refuses an overlap.
        """
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        with self.lock:
            if first <= self.committed:
                raise ValueError(f"batches {first}..{last} overlap the committed batch {self.committed}")
            staging = self.dir / STAGING
            staging.mkdir(exist_ok=True)
            moves: list[tuple[Path, Path]] = []
            name = file_name(first, last)
            if rows is not None:
                dates = rows.column(PARTITION_COLUMN)
                for date in sorted(d for d in pc.unique(dates).to_pylist() if d):
                    part = rows.filter(pc.equal(dates, date)).drop_columns([PARTITION_COLUMN])
                    temp = staging / f"{date}-{name}.tmp"
                    pq.write_table(part, temp, compression="snappy")
                    moves.append((temp, self.dir / f"{PARTITION_COLUMN}={date}" / name))
            for temp, final in moves:
                final.parent.mkdir(exist_ok=True)
                os.replace(temp, final)
            marker = staging / f"{COMMITTED}.tmp"
            marker.write_text(f"{last}\n")
            os.replace(marker, self.dir / COMMITTED)
            self.committed = last
            return len(moves)
