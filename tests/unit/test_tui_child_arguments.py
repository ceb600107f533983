"""Numbers the monitor hands to its children reach them exactly; thresholds they cannot take are refused;
every command takes and checks the thresholds alike."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from producer.cli import build_parser as producer_parser
from spark_app.cli import build_parser as spark_parser
from spark_app.cli import main as spark_main
from txmon_tui import cli
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline

THRESHOLD_FLAGS = ("--large-threshold", "--alert-threshold")


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
    assert (producer.large_threshold, producer.rate) == (large, rate)


def test_a_threshold_with_more_than_two_decimals_is_refused_naming_the_flag(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--large-threshold", "999.9999"])
    error = capsys.readouterr().err
    assert "--large-threshold: expected an amount with at most 2 decimals, got '999.9999'" in error
    assert cli.build_parser().parse_args(["--alert-threshold", "1234567.89"]).alert_threshold == 1234567.89


def _threshold_flags(parser: argparse.ArgumentParser) -> dict[str, tuple[object, ...]]:
    return {action.option_strings[0]: (action.type, action.default, action.metavar, action.help)
            for action in parser._actions if set(action.option_strings) & set(THRESHOLD_FLAGS)}


def test_every_command_takes_the_thresholds_alike() -> None:
    """One declaration: the monitor, the job and the producer read a threshold the same way."""
    job = _threshold_flags(spark_parser())
    assert set(job) == set(THRESHOLD_FLAGS)
    assert _threshold_flags(cli.build_parser()) == job
    assert _threshold_flags(producer_parser()) == {"--large-threshold": job["--large-threshold"]}


@pytest.mark.parametrize("argv", [
    ["--large-threshold", "900", "--alert-threshold", "900"],
    ["--large-threshold", "1000000000", "--alert-threshold", "2000000000"],
])
def test_the_monitor_and_the_job_refuse_the_same_thresholds_alike(
        tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    errors = []
    for main, prog in ((cli.main, "txmon-tui"), (spark_main, "txmon-spark")):
        with pytest.raises(SystemExit):
            main(["-b", "127.0.0.1:9", "--data-dir", str(tmp_path), *argv])
        errors.append(capsys.readouterr().err.splitlines()[-1].removeprefix(f"{prog}: error: "))
    assert errors[0] == errors[1] and errors[0].startswith("--large-threshold")
