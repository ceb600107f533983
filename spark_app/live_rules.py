"""Rules versions in the running job: which version judges which micro-batches (no pyspark here).

With `--live-rules` the job takes its thresholds and account rules from the `txmon.rules` topic
(txmon_core.rules_log): the settings file and flags seed version 1 when the topic is empty, and a new
version takes effect without a restart of the job process. The alerts query is stopped after the batch
in which the new version was seen and started again with it, so the switch is a batch boundary: every
transaction is judged by exactly one version. Each switch is recorded in the checkpoint folder
(`rules-versions.jsonl`: the first batch a version judges, the version and its settings), which is
how a restart re-derives the Parquet rows of earlier batches with the version that judged them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from txmon_core.rules import RuleSettings

LOG_NAME = "rules-versions.jsonl"


@dataclass(frozen=True)
class Judge:
    """What judges a batch: the thresholds, the account rules and the rules version (None: no topic)."""

    large_threshold: float
    alert_threshold: float
    account: RuleSettings
    version: int | None = None


def record_switch(checkpoint: Path, first_batch: int, judge: Judge) -> None:
    """Append that `judge` judges the batches from `first_batch` on (idempotent for a repeated start)."""
    entries = switches(checkpoint)
    if entries and _same(entries[-1][1], judge):
        return
    checkpoint.mkdir(parents=True, exist_ok=True)
    with open(checkpoint / LOG_NAME, "ab") as log:
        log.write(orjson.dumps({"batch": first_batch, "version": judge.version,
                                "large_threshold": judge.large_threshold,
                                "alert_threshold": judge.alert_threshold}) + b"\n")


def _same(a: Judge, b: Judge) -> bool:
    return (a.version, a.large_threshold, a.alert_threshold) == (
        b.version, b.large_threshold, b.alert_threshold)


def switches(checkpoint: Path) -> list[tuple[int, Judge]]:
    """(first batch, judge) of every recorded version, in order (the account rules are not replayed)."""
    path = checkpoint / LOG_NAME
    if not path.exists():
        return []
    found = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            data = orjson.loads(line)
            found.append((int(data["batch"]), Judge(float(data["large_threshold"]),
                                                    float(data["alert_threshold"]), RuleSettings(),
                                                    data.get("version"))))
    return found


def segments(checkpoint: Path, first: int, last: int, default: Judge) -> list[tuple[int, int, Judge]]:
    """Batches first..last cut where the judging version changed: (first, last, judge) each."""
    cuts = [(batch, judge) for batch, judge in switches(checkpoint) if batch <= last]
    result: list[tuple[int, int, Judge]] = []
    judge = default
    for batch, recorded in cuts:
        if batch <= first:
            judge = recorded
    start = first
    for batch, recorded in cuts:
        if first < batch <= last:
            result.append((start, batch - 1, judge))
            start, judge = batch, recorded
    result.append((start, last, judge))
    return result
