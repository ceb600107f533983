"""The systemd units under deploy/systemd: systemd's own checks pass, they are hardened, and each runs a
real txmon command with options that command accepts.

No systemd runs here as PID 1, so the units are checked with `systemd-analyze verify` and `systemd-analyze
security --offline`, and the user file with `systemd-sysusers --dry-run`; .ci/run installs systemd where
these tools are missing.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from producer import cli as producer_cli
from spark_app import cli as spark_cli
from txmon_tui import cli as tui_cli

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALL_PREFIX = "/opt/txmon/bin/"  # where docs/operations.md installs txmon
NAMES = ("txmon-broker", "txmon-spark", "txmon-producer", "txmon-delivery")
DATA_DIR, CACHE_DIR = "/var/lib/txmon", "/var/cache/txmon"
# `systemd-analyze security` exposure, in tenths (1.7 today): loosening any setting raises it.
MAX_EXPOSURE = 17
HARDENING = {
    "User": "txmon", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
    "StateDirectory": "txmon", "CacheDirectory": "txmon",
}


def tool(name: str) -> str:
    """The path of a systemd tool; skipped only where .ci/run would install it (so CI always runs this)."""
    found = shutil.which(name)
    if found is None:
        ci_run = (ROOT / ".ci" / "run").read_text()
        assert "need+=(systemd)" in ci_run, f"{name} is missing and .ci/run does not install systemd"
        pytest.skip(f"{name} is not installed here (.ci/run installs systemd)")
    return found


def unit(name: str) -> dict[str, dict[str, str]]:
    """A unit file's sections as systemd reads them; a repeated key (Environment=) keeps every value, one a
    line."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in (UNITS / f"{name}.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current[key] = f"{current[key]}\n{value}" if key in current else value
    return sections


def argv(name: str) -> list[str]:
    return shlex.split(unit(name)["Service"]["ExecStart"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units as installed with this interpreter's txmon commands (verify checks ExecStart exists)."""
    folder = tmp_path_factory.mktemp("units")
    bin_dir = f"{Path(sys.executable).parent}/"
    for path in UNITS.glob("*.service"):
        (folder / path.name).write_text(path.read_text().replace(INSTALL_PREFIX, bin_dir))
    return folder


def test_every_part_has_a_unit() -> None:
    assert sorted(p.stem for p in UNITS.glob("*.service")) == sorted(NAMES)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in NAMES:
        command = argv(name)[0]
        assert command.startswith(INSTALL_PREFIX) and command.removeprefix(INSTALL_PREFIX) in scripts, command


@pytest.mark.parametrize("name", NAMES)
def test_systemd_analyze_verify_is_silent(name: str, installed: Path) -> None:
    command = [tool("systemd-analyze"), "verify", "--man=no", str(installed / f"{name}.service")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    said = (result.stdout + result.stderr).strip()
    # verify exits 0 on unknown keys and bad values, but says so: any output is a finding.
    assert result.returncode == 0 and not said, said


@pytest.mark.parametrize("name", NAMES)
def test_units_are_hardened(name: str, installed: Path) -> None:
    service = unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{name}: {key}={service.get(key)!r}, expected {value!r}"
    assert set(service["ReadWritePaths"].split()) == {DATA_DIR, CACHE_DIR}
    command = [tool("systemd-analyze"), "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}",
               str(installed / f"{name}.service")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_the_user_file_creates_the_units_user(tmp_path: Path) -> None:
    result = subprocess.run([tool("systemd-sysusers"), "--dry-run", f"--root={tmp_path}",
                             str(UNITS / "txmon.sysusers")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Creating user 'txmon'" in result.stdout + result.stderr


def environment(name: str) -> dict[str, str]:
    pairs = [item for line in unit(name)["Service"].get("Environment", "").splitlines()
             for item in shlex.split(line)]
    return dict(pair.split("=", 1) for pair in pairs)


def test_commands_accept_their_options_and_share_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("txmon-spark", "txmon-producer", "txmon-delivery"):
        env = environment(name)
        assert env["TXMON_DATA_DIR"] == DATA_DIR and env["TXMON_CACHE_DIR"] == CACHE_DIR, name
        assert env["TXMON_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092", name
    for key, value in environment("txmon-delivery").items():
        monkeypatch.setenv(key, value)  # the options' defaults come from the unit's environment
    assert environment("txmon-broker")["TXMON_CACHE_DIR"] == CACHE_DIR
    assert argv("txmon-broker")[1:] == ["--port", "9092", "--data-dir", f"{DATA_DIR}/broker"]
    spark_cli.build_parser().parse_args(argv("txmon-spark")[1:])
    producer_cli.build_parser().parse_args(argv("txmon-producer")[1:])
    delivery = tui_cli.build_parser().parse_args(argv("txmon-delivery")[1:])
    assert delivery.bootstrap_servers == "127.0.0.1:9092" and str(delivery.data_dir) == DATA_DIR
    # A service: headless without --duration, no children of its own, the metrics endpoint on.
    assert delivery.headless and delivery.duration is None
    config = tui_cli.pipeline_config(delivery)
    assert not config.run_producer and not config.run_spark and delivery.metrics_port > 0
