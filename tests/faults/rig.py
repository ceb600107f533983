"""The processes a fault test runs and breaks: its own broker, producer runs with ack logs, Spark jobs.

Everything a rig starts, it stops in `close()`, pass or fail; every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tests.conditions import wait_until
from tests.faults.audit import Audit, MonitorProbe, wait_for_sinks
from tests.integration.test_pipeline import SparkJob
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.options import BOOTSTRAP_ENV
from txmon_tui.readers import OffsetWatcher

SINK_TIMEOUT = 240.0  # a restarted job replays its backlog on 2 busy cores
PRODUCER_STOP_TIMEOUT = 60.0


class ProducerRun:
    """`python -m producer --ack-log FILE` in its own session, output in files."""

    def __init__(self, bootstrap: str, work_dir: Path, rate: str, *extra: str) -> None:
        stamp = time.monotonic_ns()
        self.ack_log = work_dir / f"acks-{stamp}.log"
        self.out_path = work_dir / f"producer-{stamp}.out"
        self.err_path = self.out_path.with_suffix(".err")
        env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "producer", "-b", bootstrap, "--rate", rate,
                 "--ack-log", str(self.ack_log), *extra],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )

    def acked(self) -> int:
        """Acknowledged ids logged so far."""
        try:
            return self.ack_log.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.stderr()

    def wait_acked(self, count: int, timeout: float = 60.0) -> int:
        """Until at least `count` ids are acknowledged (fails early if the producer exits)."""
        def enough() -> int:
            if self.process.poll() is not None and self.acked() < count:
                raise AssertionError(f"producer exited ({self.process.returncode}):\n{self.output()}")
            return self.acked() if self.acked() >= count else 0
        return wait_until(enough, timeout, f"{count} acknowledged transactions", interval=0.2)

    def stop(self) -> int:
        """SIGTERM (the producer flushes and exits 0), SIGKILL if it overruns."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(PRODUCER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class FaultRig:
    """A dedicated broker and data folder with the producers and Spark jobs started on them."""

    def __init__(self, work_dir: Path, client_settings: Mapping[str, str] | None = None,
                 broker: EmbeddedBroker | None = None) -> None:
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.owns_broker = broker is None  # a broker handed in belongs to the caller, who stops it
        self.broker = broker or EmbeddedBroker(work_dir / "broker")
        self.client_settings = dict(client_settings or {})
        self.producers: list[ProducerRun] = []
        self.jobs: list[SparkJob] = []
        self.probe: MonitorProbe | None = None
        self._watcher: OffsetWatcher | None = None

    @property
    def client_config(self) -> dict[str, str]:
        return {**self.client_settings, "bootstrap.servers": self.broker.bootstrap}

    def start(self) -> FaultRig:
        """Start the broker, create the topics and begin watching alerts as the monitor does."""
        if self.owns_broker:
            self.broker.start()
            self.broker.wait_ready(timeout=120)
        topics.ensure_topics(self.client_config, topics.ALL)
        self.probe = MonitorProbe(self.client_config)
        self._watcher = OffsetWatcher(self.client_config)
        return self

    def start_producer(self, rate: str, *extra: str) -> ProducerRun:
        run = ProducerRun(self.broker.bootstrap, self.work_dir, rate, *extra)
        self.producers.append(run)
        return run

    def start_job(self, *extra: str) -> SparkJob:
        job = SparkJob(self.broker, self.data_dir, *extra)
        self.jobs.append(job)
        return job

    def end_offset(self, topic: str) -> int:
        """A topic's end offset (0 while the broker does not answer)."""
        assert self._watcher is not None
        return self._watcher.end_offset_total(topic) or 0

    def wait_growth(self, topic: str, beyond: int, timeout: float, what: str) -> float:
        """Until `topic` grows past `beyond`; returns when it did (time.monotonic())."""
        wait_until(lambda: self.end_offset(topic) > beyond, timeout, what, interval=0.2)
        return time.monotonic()

    def ack_logs(self) -> list[Path]:
        return [run.ack_log for run in self.producers]

    def audit(self) -> Audit:
        """Wait for the sinks to catch up with the topic, then compare everything (the monitor's too)."""
        audit = wait_for_sinks(self.client_config, self.ack_logs(), self.data_dir, SINK_TIMEOUT)
        if self.probe is not None:
            # The monitor reads the alerts topic live; give it the time to take what the audit saw.
            expected = len(audit.above(900.0))
            wait_until(lambda: self.probe.distinct_alerts() >= expected, 30,  # type: ignore[union-attr]
                       f"the monitor to count {expected} alerts", interval=0.2)
            audit.monitor_alerts = self.probe.distinct_alerts()
        return audit

    def close(self) -> None:
        """Stop every process this rig started, then the broker, whatever state they are in."""
        for run in self.producers:
            run.kill()
        for job in self.jobs:
            job.kill_group()
        if self.probe is not None:
            self.probe.close()
        if self._watcher is not None:
            self._watcher.close()
        if self.owns_broker:
            self.broker.stop()
