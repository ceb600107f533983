"""The Parquet table's commit protocol: whole files, each batch once, leftovers of a cut flush dropped."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from spark_app.offset_log import uncovered
from spark_app.parquet_buffer import Flush, ParquetBuffer
from txmon_core import large_table
from txmon_core.large_table import LargeTable


def rows(*ids: str, date: str = "2026-12-05") -> pa.Table:
    """Parquet rows of flagged transactions with these ids."""
    return pa.table({
        "tx_id": list(ids), "amount": [700.0] * len(ids), "level": ["large"] * len(ids),
        large_table.PARTITION_COLUMN: [date] * len(ids),
    })


def read_ids(table_dir: Path) -> list[str]:
    """tx_ids as a plain reader sees them: every file in the folder, hive partitions."""
    dataset = ds.dataset(table_dir, format="parquet", partitioning="hive")
    return sorted(dataset.to_table(columns=["tx_id"]).column("tx_id").to_pylist())


def test_a_flush_writes_one_file_per_date_and_moves_the_committed_mark(tmp_path: Path) -> None:
    table = LargeTable(tmp_path / "large")
    both = pa.concat_tables([rows("a", "b"), rows("c", date="2026-12-06")])
    assert table.write(0, 4, both) == 2
    assert large_table.committed_batch(table.dir) == 4
    assert [p.parent.name for p in large_table.data_files(table.dir)] == [
        "event_date=2026-12-05", "event_date=2026-12-06"]
    assert read_ids(table.dir) == ["a", "b", "c"]
    assert not any((table.dir / large_table.STAGING).iterdir())  # nothing half-written is left
    assert table.write(5, 6, None) == 0  # batches without flagged rows still count as covered
    assert large_table.committed_batch(table.dir) == 6


def test_a_batch_is_never_written_twice(tmp_path: Path) -> None:
    table = LargeTable(tmp_path / "large")
    table.write(0, 3, rows("a"))
    with pytest.raises(ValueError, match="overlap"):
        table.write(3, 5, rows("b"))
    assert read_ids(table.dir) == ["a"]


def test_files_of_an_unfinished_flush_are_dropped_on_open(tmp_path: Path) -> None:
    table = LargeTable(tmp_path / "large")
    table.write(0, 3, rows("a"))
    # A flush of batches 4..7 renamed its file, then the job died before the committed mark moved.
    cut = table.dir / "event_date=2026-12-05" / large_table.file_name(4, 7)
    cut.write_bytes((table.dir / "event_date=2026-12-05" / large_table.file_name(0, 3)).read_bytes())
    (table.dir / large_table.STAGING / "2026-12-05-x.tmp").write_bytes(b"half")
    reopened = LargeTable(table.dir)
    assert reopened.committed == 3 and not cut.exists()
    reopened.write(4, 9, rows("b"))  # the same batches again, as the restarted job re-derives them
    assert read_ids(table.dir) == ["a", "b"]


def test_the_buffer_skips_batches_the_table_has_and_flushes_in_order(tmp_path: Path) -> None:
    table = LargeTable(tmp_path / "large")
    table.write(0, 2, rows("a"))
    flushes: list[Flush] = []
    buffer = ParquetBuffer(table, interval=3600, on_flush=flushes.append)
    buffer.add(2, rows("again"), {"0": 30})  # Spark ran batch 2 again after a crash: already stored
    buffer.add(3, rows("b"), {"0": 40})
    buffer.add(4, rows(), {"0": 50})
    assert buffer.flush() == 1
    assert read_ids(table.dir) == ["a", "b"]
    assert [(f.first, f.last, dict(f.end_offsets)) for f in flushes] == [(3, 4, {"0": 50})]
    assert buffer.flush() == 0 and len(flushes) == 1  # nothing buffered: nothing written


def test_the_buffer_is_due_after_its_interval_or_when_the_topic_goes_quiet(tmp_path: Path) -> None:
    buffer = ParquetBuffer(LargeTable(tmp_path / "large"), interval=3600)
    assert not buffer.due()
    buffer.add(0, rows("a"), {"0": 1})
    assert not buffer.due()  # just added: neither old nor quiet
    buffer._added_at -= 1.0  # as if the last batch came a second ago
    assert buffer.due()


def write_log(path: Path, offsets: dict[str, dict[str, int]], nul: bool = False) -> None:
    """A Spark offset log file: version line, metadata line, source offsets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ('v1\n{"batchWatermarkMs":0}\n' if not nul else "v1\n") + str(offsets).replace("'", '"')
    path.write_bytes((b"\0" if nul else b"") + body.encode())


def test_uncovered_batches_are_found_from_the_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "alerts"
    assert uncovered(checkpoint, -1) is None  # a first start
    write_log(checkpoint / "sources" / "0" / "0", {"transactions": {"0": 0}}, nul=True)
    for batch, end in ((0, 100), (1, 250), (2, 400)):
        write_log(checkpoint / "offsets" / str(batch), {"transactions": {"0": end}})
    for batch in (0, 1):  # batch 2 was planned but never committed: Spark itself runs it again
        (checkpoint / "commits").mkdir(exist_ok=True)
        (checkpoint / "commits" / str(batch)).write_text("v1\n{}")
    assert uncovered(checkpoint, 1) is None
    assert uncovered(checkpoint, 0) == (1, {"transactions": {"0": 100}}, {"transactions": {"0": 250}})
    assert uncovered(checkpoint, -1) == (1, {"transactions": {"0": 0}}, {"transactions": {"0": 250}})
