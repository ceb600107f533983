"""Other local users: a real `txmon-tui --headless` run, started with the common umask 022, leaves a data
dir of mode 0700 and no file or folder in it that the group or others can read."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from txmon_core.broker import EmbeddedBroker
from txmon_core.paths import private_data_dir
from txmon_core.records.alert import Alert
from txmon_core.records.transaction import format_ts
from txmon_core.topics import ALERTS, ensure_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def feed_alerts(bootstrap: str, stop: threading.Event) -> None:
    """Stand in for Spark: an alert every 0.2 s, so that every sink writes its file."""
    producer = Producer({"bootstrap.servers": bootstrap})
    n = 0
    while not stop.wait(0.2):
        now = format_ts(int(time.time() * 1000))
        alert = Alert(f"private-{time.time_ns()}-{n}", "RO49RZBR0000060012345678", "Lidl", 950.0, "RON", now,
                      "alert", "amount>900", now)
        producer.produce(ALERTS, orjson.dumps(dataclasses.asdict(alert)))
        producer.poll(0)
        n += 1
    producer.flush(10)


def test_a_real_run_leaves_nothing_readable_by_other_users(broker: EmbeddedBroker, tmp_path: Path) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    data = tmp_path / "data"
    settings = tmp_path / "txmon.toml"
    settings.write_text("[sinks.jsonl]\nfsync = false\n\n[storage]\n")
    command = [sys.executable, "-m", "txmon_tui.cli", "--headless", "--duration", "4", "--with-producer",
               "--rate", "20", "-b", broker.bootstrap, "--data-dir", str(data), "--settings", str(settings)]
    stop = threading.Event()
    feeder = threading.Thread(target=feed_alerts, args=(broker.bootstrap, stop))
    feeder.start()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                preexec_fn=lambda: os.umask(0o022))  # what most logins have
    finally:
        stop.set()
        feeder.join(30)
    assert result.returncode in (0, 3), result.stderr  # 3: stalled (no Spark job here), still a run
    written = {path.relative_to(data).as_posix(): stat.S_IMODE(path.stat().st_mode)
               for path in data.rglob("*")}
    for expected in ("alerts.jsonl", "alerts.sqlite", "delivery/outbox.sqlite", "logs"):
        assert expected in written, f"the run wrote no {expected} ({sorted(written)})"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    readable = {name: oct(mode) for name, mode in written.items() if mode & 0o077}
    assert not readable, f"readable by other users: {readable}"


def test_an_existing_open_data_dir_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    before = os.umask(0o022)
    try:
        private_data_dir(data)
        assert os.umask(0o022) == 0o077  # os.umask returns the mask it replaces
    finally:
        os.umask(before)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
