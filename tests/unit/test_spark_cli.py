"""txmon-spark's command line: parsed without a JVM, bad flags named, -X mapped to the Java client."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from spark_app.cli import build_parser, main
from txmon_core import large_table

ROOT = Path(__file__).resolve().parents[2]


def test_help_answers_without_starting_spark() -> None:
    code = (
        "import sys\nfrom spark_app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('pyspark' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--large-threshold" in result.stdout and result.stdout.strip().endswith("False")


def test_spark_submit_runs_the_package_main_as_a_file(tmp_path: Path) -> None:
    """spark-submit runs `spark_app/__main__.py` as a plain file, from any folder, txmon not installed."""
    # -S: no site processing, so no installed (editable) txmon; the libraries come from PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    result = subprocess.run([sys.executable, "-S", str(ROOT / "spark_app" / "__main__.py"), "--help"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: txmon-spark") and "--large-threshold" in result.stdout


def test_defaults() -> None:
    args = build_parser().parse_args(["-b", "h:1"])
    assert (args.large_threshold, args.alert_threshold, args.master) == (500.0, 900.0, None)
    assert (args.starting_offsets, args.max_offsets_per_trigger) == ("earliest", 200_000)
    assert args.trigger_ms == 100
    assert args.parquet_trigger == 5.0


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--large-threshold", "-5"], "--large-threshold"),
        (["--alert-threshold", "zero"], "--alert-threshold"),
        (["--large-threshold", "900", "--alert-threshold", "900"], "--large-threshold"),
        (["--large-threshold", "950"], "--alert-threshold"),
        (["--parquet-trigger", "0"], "--parquet-trigger"),
        (["--max-offsets-per-trigger", "1.5"], "--max-offsets-per-trigger"),
        (["--starting-offsets", "middle"], "--starting-offsets"),
    ],
)
def test_bad_flags_name_themselves(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-b", "127.0.0.1:1", *argv])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_bootstrap_is_required(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TXMON_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(SystemExit):
        main([])
    assert "--bootstrap-servers" in capsys.readouterr().err


def test_client_settings_reach_the_java_client() -> None:
    from spark_app.config import java_client_options

    options = java_client_options({
        "bootstrap.servers": "h:9093", "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": "/ca.pem",
    })
    assert options == {
        "kafka.bootstrap.servers": "h:9093",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                  'username="u" password="p";',
        "kafka.ssl.truststore.location": "/ca.pem",
        "kafka.ssl.truststore.type": "PEM",
    }


def test_a_committed_table_without_its_checkpoint_is_refused(tmp_path: Path) -> None:
    from spark_app.config import JobConfig
    from spark_app.job import start_problem

    config = JobConfig(client_config={}, data_dir=tmp_path)
    assert start_problem(config) is None  # a first start
    rows = config.parquet_dir / "event_date=2026-12-05" / large_table.file_name(0, 3)
    rows.parent.mkdir(parents=True)
    rows.write_bytes(b"PAR1")
    problem = start_problem(config)
    assert problem is not None and "checkpoint" in problem and str(config.parquet_dir) in problem
    offsets = config.checkpoint("alerts") / "offsets"
    offsets.mkdir(parents=True)
    (offsets / "0").write_text("v1\n{}\n{}\n")
    assert start_problem(config) is None  # table and checkpoint belong together


def test_a_table_of_spark_s_file_sink_is_refused_with_the_way_out(tmp_path: Path) -> None:
    from spark_app.config import JobConfig
    from spark_app.job import start_problem

    config = JobConfig(client_config={}, data_dir=tmp_path)
    (config.parquet_dir / "_spark_metadata").mkdir(parents=True)
    problem = start_problem(config)
    assert problem is not None and "older txmon" in problem and "--data-dir" in problem

def test_a_password_with_quotes_stays_one_jaas_value() -> None:
    from spark_app.config import java_client_options

    options = java_client_options({"sasl.mechanisms": "PLAIN", "sasl.username": "u",
                                   "sasl.password": 'p"; x="y\\'})
    assert options["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" '
        'password="p\\"; x=\\"y\\\\";')


def test_the_benchmarks_take_the_job_s_query_options_as_the_job_does() -> None:
    from bench.pipeline import add_pipeline_options

    def query_options(parser: argparse.ArgumentParser) -> dict[str, tuple[object, ...]]:
        return {action.option_strings[0]: (action.type, action.default, action.choices, action.help)
                for action in parser._actions
                if set(action.option_strings) & {"--parquet-trigger", "--max-offsets-per-trigger", "--mode"}}

    bench = argparse.ArgumentParser()
    add_pipeline_options(bench)
    assert len(query_options(build_parser())) == 3
    assert query_options(bench) == query_options(build_parser())
