"""Which rules version judged which batches: the switches recorded in the checkpoint."""

from __future__ import annotations

from pathlib import Path

from spark_app.live_rules import Judge, record_switch, segments, switches
from txmon_core.rules import RuleSettings

V1 = Judge(500.0, 900.0, RuleSettings(), 1)
V2 = Judge(500.0, 800.0, RuleSettings(velocity_count=4), 2)


def test_a_repeated_start_under_the_same_version_records_nothing(tmp_path: Path) -> None:
    record_switch(tmp_path, 0, V1)
    record_switch(tmp_path, 7, V1)  # restarted, same version: still judged by V1 from batch 0
    record_switch(tmp_path, 12, V2)
    assert [(batch, judge.version, judge.alert_threshold) for batch, judge in switches(tmp_path)] == [
        (0, 1, 900.0), (12, 2, 800.0)]


def test_a_stretch_of_batches_is_cut_where_the_version_changed(tmp_path: Path) -> None:
    default = Judge(500.0, 900.0, RuleSettings())
    assert segments(tmp_path, 3, 9, default) == [(3, 9, default)]  # nothing recorded: the flags judge
    record_switch(tmp_path, 0, V1)
    record_switch(tmp_path, 12, V2)
    cut = [(first, last, judge.version) for first, last, judge in segments(tmp_path, 10, 15, default)]
    assert cut == [(10, 11, 1), (12, 15, 2)]
    assert [(first, last, judge.version) for first, last, judge in segments(tmp_path, 13, 14, default)] == [
        (13, 14, 2)]
