"""Unit tests of the shared options, paths, jar lookup and broker settings (no processes started)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from txmon_core import jars, options, paths
from txmon_core.broker import new_cluster_id, server_properties


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    options.add_kafka_options(p)
    options.add_data_dir(p)
    return p


def test_client_config_merges_dash_x_and_bootstrap() -> None:
    args = parser().parse_args(["-b", "h:1", "-X", "security.protocol=SASL_SSL", "-X", "sasl.password=a=b"])
    assert options.client_config(args) == {
        "bootstrap.servers": "h:1",
        "security.protocol": "SASL_SSL",
        "sasl.password": "a=b",  # only the first '=' separates key from value
    }


def test_bootstrap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(options.BOOTSTRAP_ENV, "env:9")
    assert options.client_config(parser().parse_args([])) == {"bootstrap.servers": "env:9"}


@pytest.mark.parametrize("bad", ["novalue", "=v", ""])
def test_bad_dash_x_names_the_flag(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["-X", bad])
    assert "-X" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-1", "x", "inf", "nan"])
def test_positive_float_rejects(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        options.positive_float(bad)


def test_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TXMON_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert paths.default_data_dir() == tmp_path / "txmon"
    monkeypatch.setenv("TXMON_DATA_DIR", str(tmp_path / "own"))
    assert paths.default_data_dir() == tmp_path / "own"


def test_missing_tool_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(jars.MissingToolError, match="apt-get install maven"):
        jars.find_tool("mvn")
    with pytest.raises(jars.MissingToolError, match="Java 17"):
        jars.find_tool("java")


def test_poms_pin_the_versions_the_code_names() -> None:
    broker_pom = (jars.POMS / "broker.xml").read_text()
    spark_pom = (jars.POMS / "spark.xml").read_text()
    assert broker_pom.count(f"<version>{jars.KAFKA_VERSION}</version>") == 2  # kafka_2.13 and kafka-tools
    assert f"<version>{jars.SPARK_VERSION}</version>" in spark_pom
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'"pyspark=={jars.SPARK_VERSION}"' in pyproject


def test_broker_listens_on_loopback_only(tmp_path: Path) -> None:
    settings = dict(
        line.split("=", 1) for line in server_properties(9092, 9093, tmp_path).splitlines()
    )
    for key in ("listeners", "advertised.listeners"):
        for listener in settings[key].split(","):
            assert "//127.0.0.1:" in listener, listener
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["auto.create.topics.enable"] == "false"


def test_cluster_ids_are_valid_for_the_storage_tool() -> None:
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_partitions_option_defaults_to_one_and_names_itself(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args([]).partitions == 1
    assert parser().parse_args(["--partitions", "3"]).partitions == 3
    with pytest.raises(SystemExit):
        parser().parse_args(["--partitions", "0"])
    assert "--partitions" in capsys.readouterr().err


def test_monitor_passes_partitions_to_its_pipeline() -> None:
    from txmon_tui import cli

    assert cli.pipeline_config(cli.build_parser().parse_args(["--partitions", "3"])).partitions == 3
    assert cli.pipeline_config(cli.build_parser().parse_args([])).partitions == 1
