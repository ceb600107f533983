"""Child processes the tests start: the environment they get, the Spark job, the monitor's children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.waiting import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.options import BOOTSTRAP_ENV
from txmon_tui.supervise.children import ProcState
from txmon_tui.supervise.pipeline import Pipeline

JOB_READY_TIMEOUT = 180.0  # JVM start, jars, two queries; slow on a busy 2-core machine
JOB_STOP_TIMEOUT = 60.0


def child_env() -> dict[str, str]:
    """This environment without the broker variable: a child reaches only the broker its flags name."""
    return {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}


def terminate(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM `process` if it runs and wait up to `timeout` seconds: whether it has exited."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
    return True


def running_pid(pipeline: Pipeline, name: str) -> int | None:
    """The pid of the monitor's named child while it runs, else None."""
    view = pipeline.process(name)
    return view.pid if view is not None and view.state is ProcState.RUNNING else None


class SparkJob:
    """`python -m spark_app` as a child process in its own session, stdout and stderr into files."""

    def __init__(self, broker: EmbeddedBroker, data_dir: Path, *extra: str) -> None:
        self.stdout_path = data_dir / f"job-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "spark_app", "-b", broker.bootstrap, "--data-dir", str(data_dir),
                 "--parquet-trigger", "2", *extra],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True,
            )

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the job exited ({self.process.returncode}):\n{self.stderr_tail()}")
            return "spark job running: queries alerts, parquet" in self.stdout()
        wait_until(ready, JOB_READY_TIMEOUT, "the job's ready line", interval=0.5)

    def stop(self) -> int:
        """SIGTERM the driver alone (it stops its queries and JVM), then kill the group if it hangs."""
        terminate(self.process, JOB_STOP_TIMEOUT)
        self.kill_group()
        return self.process.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the job's session (its JVM included)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(10)
