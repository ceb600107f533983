"""The Parquet history honours Spark's `_spark_metadata` log (batches, compaction, uncommitted files)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from txmon_tui.monitor import report
from txmon_tui.monitor.history import HistoryError, HistoryReader, committed_files, read_history
from txmon_tui.monitor.stats import AmountBins


def write_part(table_dir: Path, day: str, amounts: list[float]) -> Path:
    """One data file as Spark's file sink names and lays it out (partitioned by event_date)."""
    folder = table_dir / f"event_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"
    n = len(amounts)
    pq.write_table(pa.table({
        "tx_id": [f"tx-{uuid.uuid4().hex[:8]}" for _ in range(n)],
        "account_id": ["RO49RZBR0000060012345678"] * n,
        "merchant": ["Mega Image"] * n,
        "amount": pa.array(amounts, pa.float64()),
        "currency": ["RON"] * n,
        "ts": [f"{day}T12:00:{i % 60:02d}.000Z" for i in range(n)],
        "level": ["alert" if a > 900 else "large" for a in amounts],
    }), path)
    return path


def entry(path: Path, action: str = "add") -> str:
    return json.dumps({"path": path.as_uri(), "size": path.stat().st_size, "isDir": False,
                       "modificationTime": 1795608000000, "blockReplication": 1, "blockSize": 33554432,
                       "action": action})


def write_log(table_dir: Path, name: str, paths: list[Path], version: str = "v1") -> None:
    log = table_dir / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    (log / name).write_text("\n".join([version, *(entry(p) for p in paths)]))


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Batches 0..11 (9.compact holds 0..9, batch files 0..9 still there), plus an uncommitted file."""
    table_dir = tmp_path / "large"
    committed: list[Path] = []
    for batch in range(12):
        day = "2026-11-24" if batch < 6 else "2026-11-25"
        part = write_part(table_dir, day, [510.0 + batch, 950.0])
        committed.append(part)
        write_log(table_dir, str(batch), [part])
    write_log(table_dir, "9.compact", committed[:10])
    (table_dir / "_spark_metadata" / ".10.crc").write_bytes(b"\x00junk")
    write_part(table_dir, "2026-11-25", [999.0] * 50)  # a batch that never committed: not data
    return table_dir, committed


def test_committed_files_follow_the_log_not_the_folder(table: tuple[Path, list[Path]]) -> None:
    table_dir, committed = table
    assert sorted(committed_files(table_dir)) == sorted(committed)
    assert committed_files(table_dir / "missing") == []


def test_compaction_alone_is_enough(table: tuple[Path, list[Path]]) -> None:
    table_dir, committed = table
    for batch in range(10):  # Spark deletes old batch files after compaction
        (table_dir / "_spark_metadata" / str(batch)).unlink()
    assert sorted(committed_files(table_dir)) == sorted(committed)


def test_delete_actions_remove_files(table: tuple[Path, list[Path]]) -> None:
    table_dir, committed = table
    (table_dir / "_spark_metadata" / "12").write_text("v1\n" + entry(committed[0], action="delete"))
    assert committed[0] not in committed_files(table_dir)


def test_history_bins_and_summary(table: tuple[Path, list[Path]]) -> None:
    table_dir, _ = table
    history = HistoryReader(table_dir, AmountBins(500.0, 1000.0, 25)).refresh()
    assert sum(history.counts) == 24
    assert history.counts[0] == 10 and history.counts[1] == 2  # 510..519, 520..521
    assert history.counts[22] == 12  # 950 is in 940..960
    s = history.summary
    assert (s.rows, s.files, s.missing_files) == (24, 12, 0)
    assert s.per_day == {"2026-11-24": 12, "2026-11-25": 12}
    assert s.min_amount == 510.0 and s.max_amount == 950.0
    assert s.mean_amount == pytest.approx((sum(510.0 + b for b in range(12)) + 950.0 * 12) / 24)
    assert s.first_ts == "2026-11-24T12:00:00.000Z" and s.last_ts == "2026-11-25T12:00:01.000Z"


def test_read_history_reads_only_new_commits(table: tuple[Path, list[Path]]) -> None:
    table_dir, _ = table
    data_dir = table_dir.parent
    assert read_history(data_dir).summary.rows == 24
    part = write_part(table_dir, "2026-11-26", [2000.0, 700.0, 701.0])
    write_log(table_dir, "12", [part])
    history = read_history(data_dir)
    assert history.summary.rows == 27 and history.summary.files == 13
    assert history.counts[-1] == 1 and history.summary.per_day["2026-11-26"] == 3


def test_an_unknown_log_version_is_an_error(tmp_path: Path) -> None:
    table_dir = tmp_path / "large"
    write_log(table_dir, "0", [write_part(table_dir, "2026-11-25", [600.0])], version="v9")
    with pytest.raises(HistoryError, match="v9"):
        committed_files(table_dir)


def test_report_text_has_histogram_thresholds_and_summary(table: tuple[Path, list[Path]]) -> None:
    text = report.render(table[0].parent, width=100)
    assert "\x1b[" not in text  # no colour unless asked
    assert "rows:        24 in 12 committed files" in text
    assert "2026-11-24          12" in text and "2026-11-25          12" in text
    assert "min 510.00  max 950.00" in text
    assert "lines at 500 and 900" in text


def test_report_main_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(tmp_path) == 1
    assert "no committed Parquet data" in capsys.readouterr().out


def test_the_monitor_loads_pyarrow_only_once_history_is_read(tmp_path: Path) -> None:
    # pyarrow is ~45 MB of the monitor's memory: the screen and the history module start without it.
    code = ("import sys; import txmon_tui.app, txmon_tui.monitor.history; "
            "assert 'pyarrow' not in sys.modules, 'pyarrow loaded at start'; "
            f"from txmon_tui.monitor.history import read_history; read_history({str(tmp_path)!r}); "
            "assert 'pyarrow' not in sys.modules, 'pyarrow loaded without a committed file'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
