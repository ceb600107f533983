"""A monitor-only install (`pipx install txmon`) pulls no pyspark, and still works; no install pulls pandas.

The wheel is built from the sources (offline, with the setuptools the dev extra pins) and its metadata
read; then the monitor runs in an interpreter whose site-packages really lack the optional packages.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("producer", "spark_app", "txmon_core", "txmon_sinks", "txmon_tui")
# What only an extra may bring: the Spark job's, PostgreSQL's, and the tests' and benchmarks'.
OPTIONAL = {"spark": {"pyspark"}, "postgres": {"psycopg"},
            "dev": {"pytest", "ruff", "psutil", "check-jsonschema"}}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def requires(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The built wheel's Requires-Dist, by extra ("" for the base install)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = out.glob("txmon-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.parser.Parser().parsestr(archive.read(metadata).decode())
    by_extra: dict[str, set[str]] = {}
    for line in message.get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        by_extra.setdefault(extra[1] if extra else "", set()).add(_name(requirement))
    return by_extra


def test_the_base_install_has_no_optional_package(requires: dict[str, set[str]]) -> None:
    base = requires[""]
    assert {"confluent-kafka", "textual", "sqlalchemy", "prometheus-client"} <= base
    for extra, names in OPTIONAL.items():
        assert not base & names, f"the base install pulls {sorted(base & names)} (they belong in [{extra}])"


def test_each_extra_brings_its_part(requires: dict[str, set[str]]) -> None:
    for extra, names in OPTIONAL.items():
        assert names <= requires.get(extra, set()), f"[{extra}] lacks {sorted(names - requires[extra])}"
    # The old `test` extra still installs everything the suite needs.
    assert requires["test"] == {"txmon"}


def test_no_install_pulls_pandas(requires: dict[str, set[str]]) -> None:
    # The job's driver takes its rows as Arrow and its executors run only Spark SQL expressions.
    assert {extra for extra, names in requires.items() if "pandas" in names} == set()


@pytest.fixture(scope="module")
def monitor_only_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PYTHONPATH with this interpreter's site-packages minus every optional package, then the sources."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder = tmp_path_factory.mktemp("site-packages")
    left_out = re.compile(r"^(pyspark|py4j|pandas|psycopg|txmon|__editable__)", re.IGNORECASE)
    for entry in site.iterdir():
        if not left_out.match(entry.name) and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return os.pathsep.join([str(folder), str(ROOT)])


def run_without_extras(path: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in an interpreter that sees only `path` (-S: the real site-packages are not added)."""
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("TXMON_BOOTSTRAP_SERVERS", None)
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def test_the_monitor_runs_without_pyspark_or_pandas(monitor_only_path: str) -> None:
    code = (
        "import importlib.util, sys\n"
        "for absent in ('pyspark', 'pandas', 'psycopg'):\n"
        "    assert importlib.util.find_spec(absent) is None, absent\n"
        "import txmon_tui.app, txmon_tui.cli, txmon_tui.monitor.headless, producer.cli, txmon_sinks.outlets\n"
        "import txmon_sinks.store, spark_app.cli, txmon_core.broker\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded & {'pyspark', 'pandas'}, loaded\n"
        "txmon_tui.cli.main(['--help'])\n"
    )
    result = run_without_extras(monitor_only_path, code)
    assert result.returncode == 0, result.stderr
    assert "usage: txmon-tui" in result.stdout


def test_the_spark_job_says_which_extra_it_needs(monitor_only_path: str) -> None:
    code = "import sys; from spark_app.cli import main; sys.exit(main(['-b', '127.0.0.1:9']))"
    result = run_without_extras(monitor_only_path, code)
    assert result.returncode == 1
    assert result.stderr.strip() == "txmon-spark: error: pyspark is not installed: pip install 'txmon[spark]'"
    # --help needs nothing from the extra.
    result = run_without_extras(monitor_only_path, "from spark_app.cli import main; main(['--help'])")
    assert result.returncode == 0 and "usage: txmon-spark" in result.stdout


def test_the_job_needs_no_pandas(monitor_only_path: str, tmp_path: Path) -> None:
    # pyspark present, pandas absent: the job's modules import, and txmon-spark goes past the extras
    # check to the broker (nothing listens on port 9, so it stops there).
    site = Path(sysconfig.get_paths()["purelib"])
    with_spark = tmp_path / "with-spark"
    with_spark.mkdir()
    for name in ("pyspark", "py4j"):
        (with_spark / name).symlink_to(site / name)
    path = os.pathsep.join([str(with_spark), monitor_only_path])
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('pandas') is None\n"
        "import spark_app.job, spark_app.flagged, spark_app.rule_engine, spark_app.live_rules\n"
        "assert 'pandas' not in {m.split('.')[0] for m in sys.modules}\n"
        "from txmon_core import extras\n"
        "assert extras.missing(extras.SPARK) is None, extras.missing(extras.SPARK)\n"
        "from spark_app.cli import main\n"
        "sys.exit(main(['-b', '127.0.0.1:9']))\n"
    )
    result = run_without_extras(path, code)
    assert result.returncode == 1, result.stderr
    assert "is not installed" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("txmon-spark: error:") and "127.0.0.1:9" in result.stderr, result.stderr
