"""What a query's checkpoint logged: each batch's offsets in `transactions`, the batches it committed.

Spark writes a batch's offsets before it runs the batch (its write-ahead log) and a commit after it.
No pyspark here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from txmon_core import topics


def log_json(path: Path) -> dict[str, Any]:
    """The last JSON line of one of Spark's offset log files (the source offsets)."""
    # Spark's offset logs: a version line, then JSON lines (the source offsets last); the initial
    # offsets file of the Kafka source starts with a NUL byte.
    lines = [line for line in path.read_bytes().lstrip(b"\0").splitlines() if line.strip()]
    return dict(orjson.loads(lines[-1]))


def offsets_file(checkpoint: Path, batch_id: int) -> Path:
    """The log file that holds the end offsets of batch `batch_id` (-1: where the query first began)."""
    # Batch N's end offsets are in offsets/N; the query's first start in the source's own log.
    return checkpoint / "offsets" / str(batch_id) if batch_id >= 0 else checkpoint / "sources" / "0" / "0"


def batch_offsets(checkpoint: Path, batch_id: int,
                  topic: str = topics.TRANSACTIONS) -> tuple[dict[str, int], dict[str, int]]:
    """Partition → start and end offsets in `transactions` of a batch, from the checkpoint's logs.

    Spark writes a batch's offsets there before it runs the batch (its write-ahead log). A start that
    is no longer logged reads as the end (no rows).
    """

    def offsets(path: Path) -> dict[str, int] | None:
        try:
            data = log_json(path)
        except FileNotFoundError:
            return None
        return {str(p): int(o) for p, o in data.get(topic, {}).items()}

    end = offsets(offsets_file(checkpoint, batch_id)) or {}
    start = offsets(offsets_file(checkpoint, batch_id - 1))
    return (end if start is None else start), end


def last_committed(checkpoint: Path) -> int:
    """The last batch id the query's checkpoint committed (-1 before the first)."""
    committed = _batch_ids(checkpoint / "commits")
    return committed[-1] if committed else -1


def _batch_ids(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def uncovered(checkpoint: Path, covered: int) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    """(last committed batch, start offsets, end offsets) of what the table lacks, or None."""
    committed = _batch_ids(checkpoint / "commits")
    if not committed or committed[-1] <= covered:
        return None
    last = committed[-1]
    start = log_json(offsets_file(checkpoint, covered))
    end = log_json(offsets_file(checkpoint, last))
    return last, start, end
