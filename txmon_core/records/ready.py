"""The one line each child process prints on stdout once it is ready, and how a parent tells it apart.

`txmon-broker` once clients can connect, `txmon-producer` once it produces, `txmon-spark` once its
queries run. A parent waits for a line that starts with the command's prefix (the supervisor of the
monitor, the benchmarks, the tests); what follows the prefix is for the user.
"""

from __future__ import annotations

from txmon_core.records.metrics import QUERY_ALERTS, QUERY_PARQUET

BROKER_PREFIX = "ready bootstrap.servers="
PRODUCER_PREFIX = "producing to "
JOB_PREFIX = "spark job running"
JOB_LINE = f"{JOB_PREFIX}: queries {QUERY_ALERTS}, {QUERY_PARQUET}"


def broker_line(bootstrap: str) -> str:
    """The broker's ready line, e.g. `ready bootstrap.servers=127.0.0.1:9092`."""
    return f"{BROKER_PREFIX}{bootstrap}"


def broker_bootstrap(line: str) -> str | None:
    """The HOST:PORT a broker's ready line names, or None for any other line."""
    return line.removeprefix(BROKER_PREFIX).strip() if line.startswith(BROKER_PREFIX) else None


def producer_line(servers: str, topic: str, rate_text: str) -> str:
    """The producer's ready line, e.g. `producing to 127.0.0.1:9092 topic transactions at 100 tx/s`."""
    return f"{PRODUCER_PREFIX}{servers} topic {topic} at {rate_text} tx/s"


def is_producer_line(line: str) -> bool:
    """Whether `line` is the producer's ready line."""
    return line.startswith(PRODUCER_PREFIX)


def is_job_line(line: str) -> bool:
    """Whether `line` is the Spark job's ready line."""
    return line.startswith(JOB_PREFIX)
