"""`txmon-tui info` and `--version`: the paths in use and the versions of what txmon runs on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

import confluent_kafka

from txmon_core import __version__, jars
from txmon_core.paths import cache_dir
from txmon_core.settings import SETTINGS_ENV, default_settings_path

JAVA_TIMEOUT = 10.0  # `java -version` starts a JVM: about a second here
_JAVA_VERSION = re.compile(r'version "([^"]+)"')


def librdkafka_version() -> str:
    """librdkafka's version, with the Python client's."""
    python_client = importlib.metadata.version("confluent-kafka")
    return f"{confluent_kafka.libversion()[0]} (confluent-kafka {python_client})"


def pyspark_version() -> str:
    """pyspark's version from its installed metadata (pyspark itself is never imported here)."""
    try:
        return importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return "not installed (the Spark job needs it)"


def java_version() -> str:
    """The version `java -version` reports, and where that java is; or why there is none."""
    try:
        java = jars.find_tool("java")
    except jars.MissingToolError:
        return "not found (the embedded broker and the Spark job need Java 17 or newer)"
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=JAVA_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{java} does not answer: {exc}"
    match = _JAVA_VERSION.search(result.stderr + result.stdout)
    return f"{match.group(1) if match else 'unknown'} ({java})"


def version_lines() -> list[str]:
    """What --version prints after the txmon line."""
    return [
        f"librdkafka {librdkafka_version()}",
        f"Kafka {jars.KAFKA_VERSION} (broker and Spark connector jars)",
        f"pyspark {pyspark_version()}",
        f"Java {java_version()}",
    ]


def _jar_sets(folder: Path) -> str:
    """Which jar sets are in the cache (each fetched once, by Maven)."""
    fetched = [kind for kind in ("broker", "spark") if any(folder.glob(f"{kind}-*/.complete"))]
    return ", ".join(f"{kind} jars fetched" for kind in fetched) or "none fetched yet"


def info_text(settings_path: Path | None, data_dir: Path) -> str:
    """The `txmon-tui info` report: paths in use, then versions (like `k9s info`)."""
    if settings_path is not None:
        settings = f"{settings_path} (--settings)"
    else:
        path = default_settings_path()
        origin = f" (from {SETTINGS_ENV})" if os.environ.get(SETTINGS_ENV) else ""
        settings = f"{path}{origin}{'' if path.exists() else ' (not present: built-in defaults)'}"
    jar_folder = cache_dir() / "jars"
    rows = [
        ("paths", ""),
        ("settings", settings),
        ("data dir", str(data_dir)),
        ("logs", str(data_dir / "logs")),
        ("cache", str(cache_dir())),
        ("jars", f"{jar_folder} ({_jar_sets(jar_folder)})"),
        ("versions", ""),
        ("txmon", __version__),
        ("python", platform.python_version()),
        ("librdkafka", librdkafka_version()),
        ("kafka jars", jars.KAFKA_VERSION),
        ("pyspark", pyspark_version()),
        ("java", java_version()),
    ]
    return "\n".join(name if not value else f"  {name + ':':<12} {value}" for name, value in rows)

