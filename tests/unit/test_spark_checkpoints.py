"""The checkpoint check before the job starts: whole files pass, a cut or garbled one is named in one line.

The files are written as Spark 4.2 writes them on the local file system (contents and `.crc` files
copied in form from a real checkpoint); the real job's refusal is tested in tests/faults.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from spark_app.checkpoints import (
    Damaged,
    check_crc,
    check_offsets,
    damaged_checkpoint,
    first_damage,
)

METADATA = b'{"id":"2bb9bfe7-0068-403a-92b0-149478aae0e6"}'
CONF = '{"spark.sql.shuffle.partitions":"1","spark.sql.streaming.multipleWatermarkPolicy":"min"}'


def offsets(end: int) -> bytes:
    """An offsets log file of a query reading one Kafka topic."""
    head = f'v1\n{{"batchWatermarkMs":0,"batchTimestampMs":1795615127833,"conf":{CONF}}}\n'
    return (head + f'{{"transactions":{{"0":{end}}}}}').encode()


COMMIT = b'v1\n{"nextBatchWatermarkMs":0}'
SOURCE = b'\x00v1\n{"transactions":{"0":0}}'


def sink_entry(name: str) -> str:
    return (f'{{"path":"file:///data/large/event_date=2026-11-25/{name}.snappy.parquet","size":1315681,'
            '"isDir":false,"modificationTime":1795615189683,"blockReplication":1,"blockSize":33554432,'
            '"action":"add"}')


def write(path: Path, data: bytes, crc: bool = True) -> Path:
    """Write a file and, as Hadoop's local file system does, its `.NAME.crc` (CRC32 per 512 bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if crc:
        sums = b"".join(struct.pack(">I", zlib.crc32(data[i:i + 512])) for i in range(0, len(data), 512))
        path.with_name(f".{path.name}.crc").write_bytes(b"crc\x00" + struct.pack(">i", 512) + sums)
    return path


def make_checkpoint(root: Path, query: str, batches: int) -> Path:
    folder = root / "checkpoints" / query
    write(folder / "metadata", METADATA)
    write(folder / "sources" / "0" / "0", SOURCE)
    for batch in range(batches):
        write(folder / "offsets" / str(batch), offsets(1000 * (batch + 1)))
        write(folder / "commits" / str(batch), COMMIT)
    return folder


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two query checkpoints with 12 batches each and a Parquet table with a compacted sink log."""
    make_checkpoint(tmp_path, "alerts", 12)
    make_checkpoint(tmp_path, "parquet", 12)
    log = tmp_path / "large" / "_spark_metadata"
    for batch in range(12):
        name = f"{batch}.compact" if batch == 9 else str(batch)
        first = 0 if batch == 9 else batch  # a compact file holds every file written up to its batch
        entries = [sink_entry(f"part-{b}") for b in range(first, batch + 1)]
        write(log / name, ("v1\n" + "\n".join(entries)).encode())
    return tmp_path


def folders(data_dir: Path) -> list[Path]:
    return [data_dir / "checkpoints" / "alerts", data_dir / "checkpoints" / "parquet"]


def test_a_whole_checkpoint_passes(data_dir: Path) -> None:
    assert damaged_checkpoint(folders(data_dir), data_dir / "large") is None


def test_a_fresh_data_dir_passes(tmp_path: Path) -> None:
    assert damaged_checkpoint(folders(tmp_path), tmp_path / "large") is None


def test_an_offsets_file_cut_in_half_is_named_with_what_to_do(data_dir: Path) -> None:
    victim = data_dir / "checkpoints" / "alerts" / "offsets" / "11"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    message = damaged_checkpoint(folders(data_dir), data_dir / "large")
    assert message is not None and "\n" not in message
    assert f"checkpoint file {victim} is damaged: " in message and "cut short" in message
    assert "restore it" in message
    assert f"move {data_dir / 'checkpoints'} and the Parquet table {data_dir / 'large'} aside" in message


def test_a_cut_file_without_a_checksum_is_found_by_its_form(data_dir: Path) -> None:
    victim = data_dir / "checkpoints" / "parquet" / "commits" / "11"
    victim.with_name(".11.crc").unlink()
    victim.write_bytes(COMMIT[:12])
    found = first_damage(folders(data_dir), data_dir / "large")
    assert found == (victim, "line 2 is not complete JSON (cut short?)")


@pytest.mark.parametrize(("data", "why"), [
    (b"", "it is empty"),
    (b"v1\n", "it has 0 of the 2+ lines it must have (cut short?)"),
    (offsets(5).split(b"\n{\"transactions")[0], "it has 1 of the 2+ lines it must have (cut short?)"),
    (b"garbage\n{}\n{}", "its first line is not a version line such as v1"),
    (b"v1\n[1]\n{}", "line 2 is not the batch's metadata"),
    (offsets(5)[:-3], "line 3 is not complete JSON (cut short?)"),
    (b"\xff\xfe", "it is not UTF-8 text"),
])
def test_offsets_forms_that_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(Damaged, match=f"^{re.escape(why)}$"):
        check_offsets(data)


def test_a_source_without_an_offset_yet_is_whole() -> None:
    check_offsets(b'v1\n{"batchWatermarkMs":0}\n-')


def test_a_garbled_file_of_the_same_length_fails_its_checksum(data_dir: Path) -> None:
    victim = data_dir / "checkpoints" / "alerts" / "offsets" / "10"
    data = bytearray(victim.read_bytes())
    data[-3] = ord("7") if data[-3] != ord("7") else ord("8")  # still valid JSON, wrong offset
    victim.write_bytes(bytes(data))
    with pytest.raises(Damaged, match="does not match its checksum"):
        check_crc(victim, bytes(data))
    found = first_damage(folders(data_dir), data_dir / "large")
    assert found == (victim, "its content does not match its checksum")


def test_only_the_files_a_restart_reads_are_checked(data_dir: Path) -> None:
    # An old offsets file, a sink log entry before the newest compaction: Spark never reads them again.
    old = data_dir / "checkpoints" / "alerts" / "offsets" / "3"
    old.write_bytes(b"v1\n{")
    compacted = data_dir / "large" / "_spark_metadata" / "4"
    compacted.write_bytes(b"")
    # A temporary file left by a killed writer.
    (data_dir / "checkpoints" / "alerts" / "offsets" / ".12.3f2a.tmp").write_bytes(b"v1\n{")
    assert damaged_checkpoint(folders(data_dir), data_dir / "large") is None


@pytest.mark.parametrize("relative", [
    "checkpoints/alerts/metadata",
    "checkpoints/parquet/offsets/10",
    "checkpoints/alerts/sources/0/0",
    "large/_spark_metadata/9.compact",
    "large/_spark_metadata/11",
])
def test_each_file_read_on_restart_is_checked(data_dir: Path, relative: str) -> None:
    victim = data_dir / relative
    victim.write_bytes(victim.read_bytes()[:-5])
    found = first_damage(folders(data_dir), data_dir / "large")
    assert found is not None and found[0] == victim, found
