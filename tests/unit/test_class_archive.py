"""The driver's class archive is used only once it exists whole, and only for the set-up it was made for."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_app import class_archive


def test_the_archive_is_used_once_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXMON_CACHE_DIR", str(tmp_path))
    jars = (Path("/jars/spark-sql-kafka.jar"),)
    assert class_archive.options(jars) is None  # none yet: the job starts as it always did
    archive = class_archive.path(jars)
    assert archive.parent == tmp_path / "cds"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"archive")
    options = class_archive.options(jars)
    assert options is not None and f"-XX:SharedArchiveFile={archive}" in options
    assert "-Xlog:disable" in options  # the JVM's CDS messages never reach the job's stdout
    # Other connector jars (another Spark) need another archive.
    assert class_archive.path((Path("/jars/other.jar"),)) != archive
