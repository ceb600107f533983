"""A secured broker for real: SASL/SCRAM-SHA-512 over TLS, keys made here, users added at format time.

The producer, the Spark job and the monitor's pipeline run against it with their settings in a 0600
`--config` file; a wrong password fails at once in one line; no password shows in a child's command
line, in a log, or in an error.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.conditions import wait_until
from tests.faults.rig import FaultRig
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.secure import BrokerSecurity, redact_text, write_client_config
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline

pytestmark = pytest.mark.integration

FAIL_FAST = 10.0  # seconds within which a refused login must be reported


@pytest.fixture(scope="module")
def security(tmp_path_factory: pytest.TempPathFactory) -> BrokerSecurity:
    return BrokerSecurity.generated(tmp_path_factory.mktemp("tls"), "alice")


@pytest.fixture(scope="module")
def secured(security: BrokerSecurity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One secured broker for this module, stopped at the end, pass or fail."""
    with EmbeddedBroker(tmp_path_factory.mktemp("secured"), security=security) as running:
        topics.ensure_topics(running.client_config, topics.ALL)
        yield running


def alice(security: BrokerSecurity) -> dict[str, str]:
    return security.client_settings(security.users[0])


def session_cmdlines(pid: int) -> list[str]:
    """The command lines of every process in the session `pid` leads (a child and its JVM)."""
    lines = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(proc.info["pid"]) == pid:
                lines.append(" ".join(proc.info["cmdline"] or []))
        except (ProcessLookupError, PermissionError):
            continue
    return lines


def assert_no_secret(texts: dict[str, str], security: BrokerSecurity) -> None:
    for where, text in texts.items():
        for secret in security.secrets():
            assert secret not in text, f"a password appears in {where}"


def test_plaintext_and_unknown_users_are_refused(secured: EmbeddedBroker, security: BrokerSecurity) -> None:
    with pytest.raises(KafkaException):
        AdminClient({"bootstrap.servers": secured.bootstrap, "log_level": 0}).list_topics(timeout=5)
    # The listener config names SASL_SSL only, on loopback; the controller's stays on loopback too.
    properties = (secured.data_dir / "server.properties").read_text()
    assert f"listeners=SASL_SSL://127.0.0.1:{secured.port},CONTROLLER://127.0.0.1:" in properties
    assert stat.S_IMODE((secured.data_dir / "server.properties").stat().st_mode) == 0o600
    assert_no_secret({"the broker log": secured.log_path.read_text(errors="replace")}, security)


def test_end_to_end_over_sasl_ssl(secured: EmbeddedBroker, security: BrokerSecurity, tmp_path: Path) -> None:
    config = write_client_config(tmp_path / "alice.conf", alice(security))
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    rig = FaultRig(tmp_path, client_settings=alice(security), broker=secured)
    try:
        rig.start()
        job = rig.start_job("--config", str(config))
        job.wait_ready()
        producer = rig.start_producer("500", "--count", "1500", "--config", str(config))
        wait_until(lambda: rig.end_offset(topics.ALERTS) > 0, 180, "alerts over SASL_SSL")
        cmdlines = {f"command line of {c}": c for p in (job.process.pid, producer.process.pid)
                    for c in session_cmdlines(p)}
        assert any("spark_app" in c for c in cmdlines), cmdlines
        assert producer.process.wait(120) == 0, producer.output()
        audit = rig.audit()
        print(f"\nSASL_SSL end to end: {audit.summary()}")
        assert not audit.problems(), audit.problems()
        assert len(audit.acknowledged) == 1500
        assert job.stop() == 0, job.stderr_tail()
        logs = {str(p): p.read_text(errors="replace")
                for p in [job.stdout_path, job.stderr_path, producer.out_path, producer.err_path]}
        assert_no_secret({**cmdlines, **logs}, security)
    finally:
        rig.close()  # the rig's processes; the module's broker is not the rig's to stop


@pytest.mark.parametrize("command", [
    ["-m", "producer", "--count", "5"],
    ["-m", "spark_app", "--data-dir", "{tmp}"],
    ["-m", "txmon_tui", "--headless", "--duration", "5", "--no-spark", "--data-dir", "{tmp}"],
], ids=["producer", "spark", "monitor"])
def test_wrong_password_fails_fast_in_one_line(secured: EmbeddedBroker, security: BrokerSecurity,
                                               tmp_path: Path, command: list[str]) -> None:
    wrong = "not-" + security.users[0].password
    config = write_client_config(tmp_path / "wrong.conf", {**alice(security), "sasl.password": wrong})
    argv = [sys.executable, *(a.replace("{tmp}", str(tmp_path)) for a in command),
            "-b", secured.bootstrap, "--config", str(config)]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert result.returncode != 0
    assert took < FAIL_FAST + 10, f"took {took:.1f} s"  # + interpreter and imports on a busy machine
    assert "authentication failed for user 'alice'" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    for text in (result.stdout, result.stderr):
        assert wrong not in text and security.users[0].password not in text


# After the end-to-end test, whose audit reads the whole `transactions` topic: this one adds to it.
def test_pipeline_passes_secrets_to_children_in_a_private_file(
    secured: EmbeddedBroker, security: BrokerSecurity, tmp_path: Path
) -> None:
    pipeline = Pipeline(PipelineConfig(bootstrap=secured.bootstrap, client_settings=alice(security),
                                       data_dir=tmp_path, rate=50, run_spark=False))
    try:
        pipeline.start()
        wait_until(lambda: (pipeline.poll(), pipeline.started)[1] or pipeline.error, 120, "the pipeline")
        assert pipeline.error is None
        view = pipeline.process("producer")
        assert view is not None and view.pid is not None
        cmdline = " ".join(psutil.Process(view.pid).cmdline())
        assert "--client-config" in cmdline and "-X" not in cmdline.split()
        conf = Path(cmdline.split("--client-config ")[1].split()[0])
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        log_path = tmp_path / "logs" / "producer.log"
        wait_until(lambda: "producing to" in log_path.read_text(errors="replace"), 30,
                   "the producer's ready line over SASL_SSL")
        log = log_path.read_text(errors="replace")
        assert_no_secret({"the producer's command line": cmdline, "the producer log": log}, security)
    finally:
        pipeline.stop()
    assert not conf.exists(), "the settings file outlived the pipeline"


def test_redaction() -> None:
    text = 'failed: -X sasl.password=hunter2 and password="p" and ssl.keystore.password: s3cret'
    redacted = redact_text(text)
    assert "hunter2" not in redacted and '"p"' not in redacted and "s3cret" not in redacted
