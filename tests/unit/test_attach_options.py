"""What `txmon-tui` starts for which options: attach with a broker named, the whole pipeline without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from txmon_core.options import BOOTSTRAP_ENV
from txmon_core.settings import SETTINGS_ENV
from txmon_core.topics import TopicNames
from txmon_tui import cli
from txmon_tui.attach import since_ms
from txmon_tui.supervise.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No broker variable and no settings file of the user running the tests."""
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def config_of(*argv: str) -> PipelineConfig:
    return cli.pipeline_config(cli.build_parser().parse_args(list(argv)))


def settings(tmp_path: Path, text: str) -> str:
    path = tmp_path / "txmon.toml"
    path.write_text(text)
    return str(path)


def test_without_a_broker_the_whole_pipeline_runs() -> None:
    config = config_of()
    assert config.bootstrap is None and config.run_producer and config.run_spark and not config.read_only
    assert not config_of("--no-spark").run_spark and not config_of("--no-producer").run_producer


@pytest.mark.parametrize("how", ["flag", "env", "settings"])
def test_a_named_broker_is_attached_read_only(how: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    argv: list[str] = []
    if how == "flag":
        argv = ["-b", "kafka1:9092"]
    elif how == "env":
        monkeypatch.setenv(BOOTSTRAP_ENV, "kafka1:9092")
    else:
        argv = ["--settings", settings(tmp_path, '[kafka]\nbootstrap.servers = "kafka1:9092"\n')]
    config = config_of(*argv)
    assert config.bootstrap == "kafka1:9092"
    assert (config.run_producer, config.run_spark, config.read_only) == (False, False, True)


def test_children_only_when_asked(tmp_path: Path) -> None:
    config = config_of("-b", "k:1", "--with-producer")
    assert (config.run_producer, config.run_spark, config.read_only) == (True, False, False)
    config = config_of("-b", "k:1", "--with-spark")
    assert (config.run_producer, config.run_spark, config.read_only) == (False, True, False)
    asked = settings(tmp_path, "[monitor]\nwith_spark = true\nwith_producer = true\n")
    config = config_of("-b", "k:1", "--settings", asked)
    assert (config.run_producer, config.run_spark, config.read_only) == (True, True, False)
    # the old flags still say "not that one"
    assert not config_of("-b", "k:1", "--settings", asked, "--no-spark").run_spark


@pytest.mark.parametrize("argv", [["--read-only"], ["-b", "k:1", "--read-only", "--with-producer"]])
def test_contradictions_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "txmon-tui: error: --read-only" in capsys.readouterr().err


def test_topic_names_from_settings_then_flags(tmp_path: Path) -> None:
    path = settings(tmp_path, '[topics]\nalerts = "card.alerts"\nmetrics = "card.metrics"\n')
    config = config_of("--settings", path, "--metrics-topic", "m2")
    assert config.topic_names == TopicNames(alerts="card.alerts", metrics="m2")


def test_backfill_options() -> None:
    assert config_of().since_ms is None
    assert config_of("--from-beginning").since_ms == 0
    assert since_ms("10m", now=10_000.0) == 9_400_000
    assert since_ms("1h30m", now=10_000.0) == (10_000 - 5400) * 1000
    assert since_ms("2026-12-05T09:00Z") == 1_796_461_200_000
    for bad in ("yesterday", "10 parsecs", "2999-01-01T00:00Z"):
        with pytest.raises(ValueError):
            since_ms(bad)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--since", "1h", "--from-beginning"])


def test_info_prints_paths_and_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    for label in ("settings:", "data dir:", "logs:", "cache:", "jars:", "txmon:", "librdkafka:",
                  "kafka jars:", "pyspark:", "java:"):
        assert f"  {label}" in out, out
    assert str(tmp_path / "data" / "logs") in out and str(tmp_path / "config" / "txmon" / "txmon.toml") in out


def test_version_names_the_libraries_without_importing_pyspark() -> None:
    code = ("import sys; from txmon_tui import cli\n"
            "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print('pyspark imported' if 'pyspark' in sys.modules else 'pyspark not imported')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    lines = run.stdout.splitlines()
    assert lines[0].startswith("txmon-tui ") and lines[-1] == "pyspark not imported", run.stdout + run.stderr
    for name in ("librdkafka ", "Kafka ", "pyspark ", "Java "):
        assert any(line.startswith(name) for line in lines), lines
