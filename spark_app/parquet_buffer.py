"""The alerts query's flagged rows on their way into the Parquet table: buffered, flushed every few
seconds in one write (txmon_core.large_table), and flushed when the topic goes quiet. No pyspark here."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from txmon_core.large_table import LargeTable

if TYPE_CHECKING:
    import pyarrow as pa

# Kafka columns of the Arrow rows; the rest are the Parquet columns (null for a dead letter).
KAFKA_COLUMNS = ("key", "value", "topic")
MAX_BUFFERED_BATCHES = 50
QUIET_S = 0.5


@dataclass(frozen=True)
class Flush:
    """Rows of batches first..last for the table, and where `transactions` stood after `last`."""

    first: int
    last: int
    rows: pa.Table | None  # None: no flagged row in these batches
    end_offsets: Mapping[str, int]


def commit(table: LargeTable, flush: Flush, on_flush: Callable[[Flush], None] | None) -> int:
    """Write a flush into the table and report it; return the rows written."""
    table.write(flush.first, flush.last, flush.rows)
    if on_flush is not None:
        on_flush(flush)
    return 0 if flush.rows is None else flush.rows.num_rows


class ParquetBuffer:
    """Flagged rows waiting for the table, flushed when the oldest has waited `interval` seconds.

    Batches come in order from the query's thread; a flush may also come from the idle flusher.
    `on_flush(first, last, rows)` reports each flush (the metrics).
    """

    def __init__(self, table: LargeTable, interval: float,
                 on_flush: Callable[[Flush], None] | None = None) -> None:
        self.table = table
        self.interval = interval
        self.on_flush = on_flush
        self._lock = threading.Lock()  # the buffer
        self._flushing = threading.Lock()  # one flush at a time, in batch order
        self._parts: list[pa.Table] = []
        self._first: int | None = None
        self._last: int | None = None
        self._since: float | None = None
        self._end_offsets: dict[str, int] = {}
        self._added_at = 0.0

    def add(self, batch_id: int, rows: pa.Table, end_offsets: Mapping[str, int]) -> None:
        """Buffer a batch's flagged rows (none is fine: the batch still counts as covered)."""
        with self._lock:
            if batch_id <= self.table.committed or (self._last is not None and batch_id <= self._last):
                return  # a batch the table (or the buffer) already has: Spark ran it again
            if self._first is None:
                self._first, self._since = batch_id, time.monotonic()
            self._last = batch_id
            self._added_at = time.monotonic()
            self._end_offsets = dict(end_offsets)
            if rows.num_rows:
                self._parts.append(rows)

    def due(self) -> bool:
        """True when the oldest buffered batch has waited `interval`, enough batches wait, or the
        topic went quiet (no batch for QUIET_S: a drained backlog is in the table at once).

        The batch count bound keeps the table within the offsets Spark's checkpoint retains (100
        batches by default), which a restart needs to re-derive what the buffer held.
        """
        with self._lock:
            if self._first is None or self._last is None or self._since is None:
                return False
            now = time.monotonic()
            return (now - self._since >= self.interval or now - self._added_at >= QUIET_S
                    or self._last - self._first + 1 >= MAX_BUFFERED_BATCHES)

    def flush(self) -> int:
        """Write what is buffered; return the rows written."""
        import pyarrow as pa

        with self._flushing:
            with self._lock:
                if self._first is None or self._last is None:
                    return 0
                parts = self._parts
                flush = Flush(self._first, self._last, pa.concat_tables(parts) if parts else None,
                              self._end_offsets)
                self._parts, self._first, self._last, self._since = [], None, None, None
            return commit(self.table, flush, self.on_flush)


def parquet_part(rows: pa.Table) -> pa.Table:
    """The flagged rows of a batch's Arrow rows, with the Parquet columns only."""
    import pyarrow.compute as pc

    flagged = rows.filter(pc.is_valid(rows.column("level")))  # not dead letters, not rule inputs
    return flagged.drop_columns(list(KAFKA_COLUMNS))


class IdleFlusher:
    """Flushes the buffer when no batch comes to do it (a quiet topic must not hold rows back)."""

    def __init__(self, buffer: ParquetBuffer) -> None:
        self.buffer = buffer
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="txmon-parquet-flush", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> IdleFlusher:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(0.1):
            if self.buffer.due():
                try:
                    self.buffer.flush()
                except Exception as exc:  # surfaced by the job's main loop, which stops the job
                    traceback.print_exc(file=sys.stderr)
                    self.error = exc
                    return
