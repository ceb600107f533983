"""The durable outbox in SQLite: each distinct alert once, and how far each sink has delivered.

An alert id (tx_id:level) enters at most once while it is remembered, so a repeat from the alerts topic
is dropped before any sink sees it. Each sink delivers in outbox order and keeps a cursor: everything
up to it is delivered, everything after it is pending, across restarts. An alert a sink cannot deliver
(refused again and again) is copied into `quarantine` with the reason, and the sink's cursor moves past
it: kept for a person to look at, never pruned. With the alerts, and in the same transaction, it keeps
how far the alerts topic has been read (`positions`), so the next run resumes reading there and nothing
raised while the monitor was stopped misses the sinks. One Outbox per thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from txmon_core.topics import ALERTS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, delivered INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS quarantine (
    sink TEXT NOT NULL,
    seq INTEGER NOT NULL,
    alert_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL,
    PRIMARY KEY (sink, seq)
);
"""
_IN_CHUNK = 500  # ids per IN (...) query: below SQLite's host-parameter limit everywhere


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One alert waiting in the outbox."""

    seq: int
    alert_id: str
    payload: bytes


class Outbox:
    """A connection to the outbox file (created with its folder on first use)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit, so a batch commits (or not) as one.
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers (sinks) do not block the writer (intake)
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; WAL keeps it consistent
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def add(self, items: Sequence[tuple[str, bytes]], now: float,
            positions: Mapping[int, int] | None = None, topic: str = ALERTS) -> list[int]:
        """Store the alerts not seen before and, with them, the topic's next offset per partition that
        they were read up to; return the indexes in `items` of the alerts that were new."""
        first: dict[str, int] = {}
        for index, (alert_id, _payload) in enumerate(items):
            first.setdefault(alert_id, index)
        ids = list(first)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            known: set[str] = set()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                known.update(row[0] for row in self._db.execute(
                    f"SELECT alert_id FROM outbox WHERE alert_id IN ({marks})", chunk))
            fresh = [index for alert_id, index in first.items() if alert_id not in known]
            self._db.executemany("INSERT INTO outbox (alert_id, payload, added_at) VALUES (?, ?, ?)",
                                 [(items[i][0], items[i][1], now) for i in fresh])
            # The newest read wins, even when lower: a topic made anew starts its offsets again.
            self._db.executemany("INSERT OR REPLACE INTO positions (topic, partition, next_offset) "
                                 "VALUES (?, ?, ?)", [(topic, p, o) for p, o in (positions or {}).items()])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return fresh

    def positions(self, topic: str = ALERTS) -> dict[int, int]:
        """The next offset to read per partition of `topic`, as last stored with alerts (empty at first)."""
        rows = self._db.execute("SELECT partition, next_offset FROM positions WHERE topic = ?", (topic,))
        return {int(partition): int(offset) for partition, offset in rows}

    def register(self, sink: str) -> int:
        """The sink's cursor; a sink seen for the first time starts after what is already there."""
        self._db.execute("INSERT OR IGNORE INTO cursors (sink, delivered) "
                         "SELECT ?, COALESCE(MAX(seq), 0) FROM outbox", (sink,))
        return self.cursor(sink)

    def cursor(self, sink: str) -> int:
        """The last outbox seq the sink has delivered."""
        row = self._db.execute("SELECT delivered FROM cursors WHERE sink = ?", (sink,)).fetchone()
        return int(row[0]) if row else 0

    def pending(self, after: int, limit: int) -> list[OutboxItem]:
        """Up to `limit` alerts after seq `after`, oldest first."""
        rows = self._db.execute(
            "SELECT seq, alert_id, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return [OutboxItem(int(seq), alert_id, bytes(data)) for seq, alert_id, data in rows]

    def count_after(self, after: int) -> int:
        """How many alerts wait after seq `after`."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE seq > ?", (after,)).fetchone()[0])

    def advance(self, sink: str, seq: int) -> None:
        """Record that the sink delivered everything up to `seq` (committed before the call returns)."""
        self._db.execute("UPDATE cursors SET delivered = MAX(delivered, ?) WHERE sink = ?", (seq, sink))

    def quarantine(self, sink: str, item: OutboxItem, reason: str, now: float) -> None:
        """Set `item` aside for the sink (kept with `reason`) and move the sink's cursor past it, at once."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("INSERT OR REPLACE INTO quarantine (sink, seq, alert_id, payload, reason, "
                             "quarantined_at) VALUES (?, ?, ?, ?, ?, ?)",
                             (sink, item.seq, item.alert_id, item.payload, reason, now))
            self._db.execute("UPDATE cursors SET delivered = MAX(delivered, ?) WHERE sink = ?",
                             (item.seq, sink))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def quarantined(self, sink: str) -> list[tuple[OutboxItem, str]]:
        """The alerts set aside for the sink, oldest first, each with its reason."""
        rows = self._db.execute("SELECT seq, alert_id, payload, reason FROM quarantine WHERE sink = ? "
                                "ORDER BY seq", (sink,))
        return [(OutboxItem(int(seq), alert_id, bytes(data)), reason) for seq, alert_id, data, reason in rows]

    def quarantined_count(self, sink: str) -> int:
        """How many alerts are set aside for the sink."""
        return int(self._db.execute("SELECT COUNT(*) FROM quarantine WHERE sink = ?", (sink,)).fetchone()[0])

    def prune(self, sinks: Iterable[str], older_than: float, keep: int) -> int:
        """Forget alerts every listed sink delivered that are older than `older_than` or beyond the newest
        `keep`; return how many. A forgotten id would be taken as new again, so keep enough."""
        names = list(sinks)
        if not names:
            return 0
        marks = ",".join("?" * len(names))
        query = f"SELECT MIN(delivered) FROM cursors WHERE sink IN ({marks})"
        row = self._db.execute(query, names).fetchone()
        delivered = int(row[0] or 0)
        newest = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])
        cursor = self._db.execute("DELETE FROM outbox WHERE seq <= ? AND (added_at < ? OR seq <= ?)",
                                  (delivered, older_than, newest - keep))
        return cursor.rowcount
