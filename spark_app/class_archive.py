"""A class data archive (AppCDS) for the Spark driver's JVM, kept in txmon's cache.

Loading Spark's classes is most of a session's start: measured here (2 cores, load 5–7), a session
with a first job took 4.6–7.7 s from an archive against 11–15 s without. `make setup` builds the
archive once (`python -m spark_app.class_archive`): a small session runs, its JVM writes the classes it
loaded when it exits, and the file is renamed into place only then, so a job never sees half an
archive. Its name holds what decides its validity (Java, Python, pyspark and where it is installed,
the connector jars); a job that finds none starts as before, and the JVM ignores one it cannot use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from txmon_core.paths import cache_dir

# The JVM's own CDS messages stay off stdout, which carries the job's ready line.
QUIET = "-Xlog:disable -Xlog:all=error:stderr"


def path(jars: tuple[Path, ...]) -> Path:
    """Where the archive for this Java, pyspark and these jars lives."""
    java = shutil.which("java") or ""
    # The JVM checks the classpath an archive was made with: pyspark's own jars, where it is installed.
    installed = importlib.util.find_spec("pyspark")
    where = installed.origin if installed is not None and installed.origin else ""
    key = "|".join([sys.version, importlib.metadata.version("pyspark"), where, os.path.realpath(java),
                    os.environ.get("JAVA_HOME", ""), *sorted(str(jar) for jar in jars)])
    return cache_dir() / "cds" / f"spark-driver-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def options(jars: tuple[Path, ...]) -> str | None:
    """Driver JVM options that use the archive, or None when there is none yet."""
    archive = path(jars)
    return f"-XX:SharedArchiveFile={archive} {QUIET}" if archive.is_file() else None


def build(jars: tuple[Path, ...]) -> Path:
    """Run a small session whose JVM writes the archive at exit; return the archive's path."""
    from pyspark.sql import SparkSession

    archive = path(jars)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        partial = Path(tmp) / archive.name
        builder = (
            SparkSession.builder.master("local[2]").appName("txmon-class-archive")
            .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.extraJavaOptions", f"-XX:ArchiveClassesAtExit={partial} {QUIET}")
        )
        if jars:
            builder = builder.config("spark.jars", ",".join(str(jar) for jar in jars))
        spark = builder.getOrCreate()
        # Touch what the job touches first: SQL planning, code generation, a job, Arrow to Python.
        spark.range(1000).selectExpr("id", "cast(id as string) as s").where("id % 7 = 0").toArrow()
        gateway = spark.sparkContext._gateway
        spark.stop()
        process = gateway.proc  # the JVM exits when its stdin closes, and writes the archive then
        process.stdin.close()
        process.wait()
        if not partial.is_file():
            raise RuntimeError("the JVM wrote no class archive (is this Java 13 or newer?)")
        os.replace(partial, archive)
    return archive


def main() -> int:
    """Build the archive for the connector jars in txmon's cache (a no-op if it exists)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from txmon_core import jars as jar_sets

    jars = tuple(jar_sets.spark_connector_jars())
    if path(jars).is_file():
        print(f"txmon: class archive ready: {path(jars)}")
        return 0
    print(f"txmon: class archive written: {build(jars)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
