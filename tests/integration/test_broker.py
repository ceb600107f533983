"""The embedded broker for real: readiness, topics, restarts that keep data, loopback only, clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.support.waiting import wait_until
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.records import ready

pytestmark = [pytest.mark.integration, pytest.mark.jvm]


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.0.0.0/8 (where a leak would show)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if "." in a and not a.startswith("127.")]


def test_topics_are_created_once_and_idempotently(broker: EmbeddedBroker) -> None:
    config = {"bootstrap.servers": broker.bootstrap}
    topics.ensure_topics(config)
    assert topics.ensure_topics(config) == []  # a second caller finds them all present


def test_restart_keeps_data_and_address(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path) as first:
        config = {"bootstrap.servers": first.bootstrap}
        topics.ensure_topics(config, [topics.TRANSACTIONS])
        producer = Producer({**config, "enable.idempotence": True})
        for i in range(10):
            producer.produce(topics.TRANSACTIONS, value=f"v{i}".encode())
        assert producer.flush(30) == 0
        address = first.bootstrap
        pid = first.pid
    assert first.process is not None and first.process.poll() is not None, "broker still running"
    with EmbeddedBroker(tmp_path) as second:
        assert second.bootstrap == address and second.pid != pid
        consumer = Consumer({"bootstrap.servers": second.bootstrap, "group.id": "restart-check"})
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topics.TRANSACTIONS, 0), timeout=10)
        finally:
            consumer.close()
        assert (low, high) == (0, 10)


def test_accepts_nothing_on_other_addresses(broker: EmbeddedBroker) -> None:
    others = non_loopback_addresses()
    if not others:
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    for address in others:
        for port in (broker.port, broker.controller_port):
            with socket.socket() as sock:
                sock.settimeout(2)
                assert sock.connect_ex((address, port)) != 0, f"broker reachable on {address}:{port}"


def alive(pid: int) -> bool:
    """Whether a process (not a zombie) with this id exists."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start_command(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """Run `txmon-broker` until its ready line; return it and its broker JVM's pid."""
    command = [sys.executable, "-m", "txmon_core.broker_cli", "--port", "0", "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the broker answers an admin client
    bootstrap = ready.broker_bootstrap(line)
    assert bootstrap and bootstrap.startswith("127.0.0.1:"), line + process.stderr.read()  # type: ignore
    return process, int((data_dir / "broker.pid").read_text())


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_command_prints_ready_and_stops_cleanly(tmp_path: Path, how: str) -> None:
    started = time.monotonic()
    process, jvm = start_command(tmp_path)
    try:
        assert time.monotonic() - started < 60
        process.send_signal(getattr(signal, how))
        # A guard, not a speed goal: Kafka's own shutdown has taken over 30 s on a busy machine.
        assert process.wait(timeout=90) == 0
        assert "broker stopped" in process.stderr.read()  # type: ignore[union-attr]
        assert not alive(jvm), "broker JVM still running after the command stopped"
        assert "shut down completed" in (tmp_path / "broker.log").read_text()  # the stop hook ran
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_broker_dies_with_a_killed_command(tmp_path: Path) -> None:
    process, jvm = start_command(tmp_path)
    try:
        process.kill()  # SIGKILL: the command cannot stop its broker itself
        process.wait()
        wait_until(lambda: not alive(jvm), 10, "the orphaned broker JVM to exit")
    finally:
        if alive(jvm):
            os.kill(jvm, signal.SIGKILL)
