"""Numbers the monitor hands to its children reach them exactly; thresholds they cannot take are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.cli import build_parser as producer_parser
from spark_app.cli import build_parser as spark_parser
from txmon_tui import cli
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline


@pytest.mark.parametrize(("large", "alert", "rate"), [
    (999.99, 1_000.01, 1_234_567.0),
    (1_234_567.89, 999_999_999.99, 0.25),
    (500.0, 900.0, 100.0),
])
def test_the_children_read_the_thresholds_and_rate_exactly(tmp_path: Path, large: float, alert: float,
                                                           rate: float) -> None:
    config = PipelineConfig(bootstrap="127.0.0.1:9", data_dir=tmp_path, rate=rate, large_threshold=large,
                            alert_threshold=alert)
    pipeline = Pipeline(config)
    spark = spark_parser().parse_args(pipeline.command("spark")[3:])
    assert (spark.large_threshold, spark.alert_threshold) == (large, alert)
    producer = producer_parser().parse_args(pipeline.command("producer")[3:])
    assert (producer.large_threshold, producer.rate) == (round(large * 100), rate)


def test_a_threshold_with_more_than_two_decimals_is_refused_naming_the_flag(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--large-threshold", "999.9999"])
    error = capsys.readouterr().err
    assert "--large-threshold: expected an amount with at most 2 decimals, got '999.9999'" in error
    assert cli.build_parser().parse_args(["--alert-threshold", "1234567.89"]).alert_threshold == 1234567.89
