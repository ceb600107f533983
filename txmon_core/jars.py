"""Jars from Maven Central: the embedded broker's classpath and Spark's Kafka connector.

Each set is described by a small pom (poms/) and copied by Maven into a cache folder on first use.
The two sets live in separate folders so that broker jars never reach Spark's classpath.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from txmon_core.paths import cache_dir

POMS = Path(__file__).with_name("poms")
# Pinned in the poms; these must agree with them and with the pyspark pin in pyproject.toml.
KAFKA_VERSION = "4.2.0"
SPARK_VERSION = "4.2.0"
# pyspark ships everything else the connector needs; other copies (lz4, hadoop client) conflict.
SPARK_ARTIFACTS = (
    "spark-sql-kafka-0-10_2.13",
    "spark-token-provider-kafka-0-10_2.13",
    "kafka-clients",
    "commons-pool2",
)
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

INSTALL_HINTS = {
    "java": "Java 17 or newer is needed: on Debian/Ubuntu `apt-get install openjdk-17-jre-headless`, "
    "elsewhere any JDK 17+ (https://adoptium.net), with `java` on PATH or JAVA_HOME set.",
    "mvn": "Maven is needed once, to fetch the Kafka and Spark jars: on Debian/Ubuntu "
    "`apt-get install maven`, elsewhere https://maven.apache.org/install.html.",
}


class MissingToolError(RuntimeError):
    """A program txmon needs (java, mvn) is not installed; the message says how to get it."""


class FetchError(RuntimeError):
    """Maven could not fetch a set of jars; the message carries Maven's own last lines."""


def find_tool(name: str) -> str:
    """The path of `java` (honouring JAVA_HOME) or `mvn`, or MissingToolError saying how to install it."""
    if name == "java" and (home := os.environ.get("JAVA_HOME")):
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"`{name}` was not found. {INSTALL_HINTS[name]}")
    return path


def _jar_dir(kind: str) -> Path:
    # The folder name carries a hash of the pom, so a version bump fetches afresh.
    digest = hashlib.sha256((POMS / f"{kind}.xml").read_bytes()).hexdigest()[:12]
    return cache_dir() / "jars" / f"{kind}-{digest}"


def maven_command(mvn: str, kind: str, output: Path) -> list[str]:
    """The Maven run that copies the jar set `kind` into `output`.

    --strict-checksums: a download whose checksum does not match fails the run instead of a warning, so
    a corrupted or tampered jar never reaches a classpath.
    """
    command = [
        mvn, "-B", "-q", "--strict-checksums", "-f", str(POMS / f"{kind}.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={output}",
    ]
    if kind == "spark":
        command.append("-DincludeArtifactIds=" + ",".join(SPARK_ARTIFACTS))
    return command


def fetch(kind: str, *, quiet: bool = False) -> Path:
    """Make sure the jar set `kind` ("broker" or "spark") is in the cache; return its folder."""
    target = _jar_dir(kind)
    done = target / ".complete"
    if done.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two commands started together on a fresh machine must not both run Maven into one folder.
    with open(target.parent / f".{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return target
        mvn = find_tool("mvn")
        if not quiet:
            print(f"txmon: fetching the {kind} jars with Maven into {target} (once) ...", file=sys.stderr,
                  flush=True)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(maven_command(mvn, kind, staging), capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise FetchError(f"Maven could not fetch the {kind} jars (exit {result.returncode}):\n{tail}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        done.touch()
        if not quiet:
            count = len(list(target.glob("*.jar")))
            print(f"txmon: {count} {kind} jars ready", file=sys.stderr, flush=True)
    return target


def broker_classpath() -> str:
    """The embedded broker's classpath (a `DIR/*` wildcard), fetching the jars on first use."""
    return str(fetch("broker") / "*")


def spark_connector_jars() -> list[Path]:
    """The jars Spark needs for its Kafka source and sink, fetching them on first use."""
    return sorted(fetch("spark").glob("*.jar"))


def main() -> int:
    """Fetch every jar set now (used by `make setup`)."""
    try:
        for kind in ("broker", "spark"):
            print(f"{kind} jars: {fetch(kind)}")
    except (MissingToolError, FetchError) as exc:
        print(f"txmon: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
