"""The embedded broker's opt-in login against the real broker: SCRAM-SHA-256 with a random password
kept in a 0600 file; clients without it are refused, clients with it (--config FILE) work, and the
login survives a restart."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from txmon_core.broker import QUIET, BrokerError, EmbeddedBroker
from txmon_core.secure import read_client_config
from txmon_core.topics import TRANSACTIONS, ensure_topics
from txmon_tui.monitor import headless
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def lists_topics(settings: dict[str, str]) -> bool:
    admin = AdminClient({**settings, "logger": QUIET})
    try:
        admin.list_topics(timeout=3.0)
        return True
    except KafkaException:
        return False


def test_a_broker_with_a_login_refuses_clients_without_it(tmp_path: Path) -> None:
    data = tmp_path / "broker"
    with EmbeddedBroker(data, login=True) as broker:
        conf = broker.login_path
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        settings = read_client_config(conf)
        assert settings["sasl.mechanisms"] == "SCRAM-SHA-256" and len(settings["sasl.password"]) >= 24
        bootstrap = {"bootstrap.servers": broker.bootstrap}
        assert not lists_topics(bootstrap), "a client without the login was let in"
        assert not lists_topics({**bootstrap, **settings, "sasl.password": "wrong"})
        ensure_topics({**bootstrap, **settings}, [TRANSACTIONS])
        # A command's own client, given the file the way every txmon command takes it.
        produced = subprocess.run(
            [sys.executable, "-m", "producer", "-b", broker.bootstrap, "--config", str(conf),
             "--count", "5"], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert produced.returncode == 0, produced.stderr
        assert settings["sasl.password"] not in produced.stderr + produced.stdout
    with EmbeddedBroker(data, login=True) as again:  # the same login after a restart
        assert read_client_config(again.login_path) == settings
        assert lists_topics({"bootstrap.servers": again.bootstrap, **settings})


def test_a_login_cannot_be_added_to_data_made_without_one(tmp_path: Path) -> None:
    data = tmp_path / "broker"
    with EmbeddedBroker(data):
        pass
    broker = EmbeddedBroker(data, login=True)
    with pytest.raises(BrokerError, match="made without a login"):
        broker.start()
    assert broker.process is None


def test_the_monitor_and_its_children_use_the_embedded_brokers_login(tmp_path: Path) -> None:
    config = PipelineConfig(data_dir=tmp_path, run_spark=False, rate=50.0, broker_login=True)
    out, err = io.StringIO(), io.StringIO()
    code = headless.run(config, duration=3.0, out=out, err=err)
    report = json.loads(out.getvalue())
    assert code in (headless.EXIT_OK, headless.EXIT_STALLED), err.getvalue()
    assert report["produced"] > 0 and report["error"] is None
    login = tmp_path / "broker" / "client-login.conf"
    assert stat.S_IMODE(login.stat().st_mode) == 0o600
    password = read_client_config(login)["sasl.password"]
    assert "SASL_PLAINTEXT://" in (tmp_path / "broker" / "server.properties").read_text()
    logs = "".join(path.read_text(errors="replace") for path in (tmp_path / "logs").glob("*.log"))
    assert password not in logs + err.getvalue() + out.getvalue()
