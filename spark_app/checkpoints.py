"""Checks, before Spark starts, that the checkpoint files a restart reads are whole.

Spark writes each log file whole (to a temporary name, then renamed), so a cut or garbled one is damage
from outside: a full disk, a bad copy, a hand edit. Spark would refuse it too, but only after its session
is up, with a long Java stack trace; this names the file and what to do, in one line. Only the files a
restart reads are checked (an old, unread one never stops the job). No pyspark here: it runs first.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

VERSION_LINE = re.compile(r"v\d+")
CRC_MAGIC = b"crc\x00"  # Hadoop's local file system keeps a `.NAME.crc` of CRC32s beside each file


class Damaged(ValueError):
    """A checkpoint file is not whole; the message says how, in a few words."""


def _json(line: str, number: int) -> object:
    try:
        return json.loads(line)
    except ValueError:
        raise Damaged(f"line {number} is not complete JSON (cut short?)") from None


def _lines(data: bytes) -> list[str]:
    if not data:
        raise Damaged("it is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged("it is not UTF-8 text") from None
    return text.split("\n")


def _versioned(data: bytes, at_least: int) -> list[str]:
    """The lines after the `vN` line, at least `at_least` of them."""
    lines = _lines(data.removeprefix(b"\x00"))  # a Kafka source's offsets file starts with a 0 byte
    if not VERSION_LINE.fullmatch(lines[0]):
        raise Damaged("its first line is not a version line such as v1")
    body = [line for line in lines[1:] if line]
    if len(body) < at_least:
        raise Damaged(f"it has {len(body)} of the {at_least}+ lines it must have (cut short?)")
    return body


def check_offsets(data: bytes) -> None:
    """An offsets log file: version, batch metadata, then one offset (JSON, or `-`) per source."""
    body = _versioned(data, 2)
    if not isinstance(_json(body[0], 2), dict):
        raise Damaged("line 2 is not the batch's metadata")
    for number, line in enumerate(body[1:], 3):
        if line != "-":
            _json(line, number)


def check_versioned_json(data: bytes) -> None:
    """A commits or source log file: version, then one JSON document."""
    _json(_versioned(data, 1)[0], 2)


def check_sink_log(data: bytes) -> None:
    """A file sink log file (`_spark_metadata`): version, then one JSON line per file written."""
    for number, line in enumerate(_versioned(data, 0), 2):
        _json(line, number)


def check_metadata(data: bytes) -> None:
    """A query's `metadata` file: one JSON object holding the query id."""
    document = _json(_lines(data)[0], 1)
    if not isinstance(document, dict) or "id" not in document:
        raise Damaged("it holds no query id")


def check_crc(path: Path, data: bytes) -> None:
    """Compare with Hadoop's `.NAME.crc` beside the file, when there is one (not on HDFS or S3)."""
    crc_path = path.with_name(f".{path.name}.crc")
    try:
        crc = crc_path.read_bytes()
    except FileNotFoundError:
        return
    if len(crc) < 8 or not crc.startswith(CRC_MAGIC):
        return  # not a checksum file we know: Spark's own reading will judge
    (chunk,) = struct.unpack(">i", crc[4:8])
    expected = [value for (value,) in struct.iter_unpack(">I", crc[8:8 + (len(crc) - 8) // 4 * 4])]
    if chunk <= 0:
        return
    chunks = (len(data) + chunk - 1) // chunk
    if chunks < len(expected):
        raise Damaged(f"cut short to {len(data)} bytes (its checksum file says at least "
                      f"{(len(expected) - 1) * chunk + 1})")
    actual = [zlib.crc32(data[i:i + chunk]) for i in range(0, len(data), chunk)]
    if actual != expected:
        raise Damaged("its content does not match its checksum")


def _numbered(folder: Path) -> list[Path]:
    """The log files of a metadata log folder (`12`, `19.compact`), by batch number."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_file() and p.name.split(".")[0].isdigit()
             and p.name.count(".") <= 1 and not p.name.startswith(".")]
    return sorted(found, key=lambda p: int(p.name.split(".")[0]))


def files_read_on_restart(checkpoint: Path) -> Iterable[tuple[Path, Callable[[bytes], None]]]:
    """One query checkpoint's files that a restart reads, each with its check."""
    metadata = checkpoint / "metadata"
    if metadata.is_file():
        yield metadata, check_metadata
    # The newest batch's offsets, and the one before (where a batch without a commit resumes from).
    for path in _numbered(checkpoint / "offsets")[-2:]:
        yield path, check_offsets
    for path in _numbered(checkpoint / "commits")[-1:]:
        yield path, check_versioned_json
    sources = checkpoint / "sources"
    if sources.is_dir():
        for source in sorted(p for p in sources.iterdir() if p.is_dir()):
            for path in _numbered(source):
                yield path, check_versioned_json


def sink_log_files(table: Path) -> list[Path]:
    """The file sink log entries a reader or the next compaction reads: the newest compact file on."""
    entries = _numbered(table / "_spark_metadata")
    compacts = [i for i, path in enumerate(entries) if path.name.endswith(".compact")]
    return entries[compacts[-1]:] if compacts else entries


def first_damage(checkpoints: Sequence[Path], table: Path) -> tuple[Path, str] | None:
    """The first damaged file a restart would read, with how it is damaged; None when all are whole."""
    files: list[tuple[Path, Callable[[bytes], None]]] = []
    for checkpoint in checkpoints:
        files.extend(files_read_on_restart(checkpoint))
    files.extend((path, check_sink_log) for path in sink_log_files(table))
    for path, check in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return path, f"it cannot be read ({exc.strerror})"
        try:
            check_crc(path, data)
        except Damaged as exc:
            checksum: Damaged | None = exc
        else:
            checksum = None
        if checksum is not None and str(checksum).startswith("cut short"):
            return path, str(checksum)  # the most precise word there is
        try:
            check(data)
        except Damaged as exc:
            return path, str(exc)  # says where the form breaks, which a checksum cannot
        if checksum is not None:
            return path, str(checksum)
    return None


def damaged_checkpoint(checkpoints: Sequence[Path], table: Path) -> str | None:
    """Why the job must not start (a damaged checkpoint or sink-log file, and what to do), or None."""
    found = first_damage(checkpoints, table)
    if found is None:
        return None
    path, why = found
    folders = sorted({str(checkpoint.parent) for checkpoint in checkpoints})
    return (
        f"checkpoint file {path} is damaged: {why}; restore it from a backup (with its .crc file, if "
        f"any), or move {' and '.join(folders)} and the Parquet table {table} aside to rebuild them "
        "from the start of the topic"
    )
