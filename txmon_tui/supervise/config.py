"""What the pipeline runs and where, and how numbers travel on its children's command lines.

No Textual, no I/O: the CLI, the attach plan and the tests build a PipelineConfig; the pipeline reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from txmon_core import topics
from txmon_core.backoff import Backoff
from txmon_core.paths import default_data_dir
from txmon_core.records.alert import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_tui.supervise.restarts import RESTART_BACKOFF

PRODUCER, SPARK = "producer", "spark"  # the children the pipeline may start


@dataclass
class PipelineConfig:
    """What to run and where; `bootstrap` None means start the embedded broker."""

    bootstrap: str | None = None
    client_settings: dict[str, str] = field(default_factory=dict)
    data_dir: Path = field(default_factory=default_data_dir)
    rate: float = 100.0
    large_threshold: float = DEFAULT_LARGE_THRESHOLD
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD
    run_producer: bool = True
    run_spark: bool = True
    seed: int | None = None
    partitions: int = 1  # of the topics created when missing
    auto_restart: bool = True  # restart a Spark job or producer that dies on its own
    settings_path: Path | None = None  # txmon.toml named on the command line, passed to the children
    broker_login: bool = False  # the embedded broker requires its SCRAM login (txmon_core.secure.LocalLogin)
    # Attached to a cluster without leave to write: no topic is created, no child started or stopped,
    # nothing injected; the pipeline only reads.
    read_only: bool = False
    topic_names: topics.TopicNames = field(default_factory=topics.TopicNames)
    since_ms: int | None = None  # backfill the alerts from this time (Unix ms; 0 = the beginning)
    restart_backoff: Backoff = RESTART_BACKOFF

    def __post_init__(self) -> None:
        if self.read_only and (self.run_producer or self.run_spark or self.bootstrap is None):
            raise ValueError("a read-only pipeline attaches to a named broker and starts no children")


def number_arg(value: float) -> str:
    """A number on a child's command line, exactly: the shortest text that reads back as the same float.

    `:g` keeps 6 digits, so 999.9999 went to the children as 1000 and 1234567.5 as 1.23457e+06.
    """
    return repr(float(value))
