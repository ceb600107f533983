"""A standalone Spark cluster (one master, one worker) on 127.0.0.1 from pyspark's own launcher, for tests.

`spark-class org.apache.spark.deploy.master.Master` and `...worker.Worker` from the pip package's `bin/`,
with SPARK_HOME set to the installed pyspark folder (otherwise its scripts look for Spark with the
system python). Each daemon runs in its own process group, so a stop takes its whole tree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from txmon_core import jars
from txmon_core.broker import HOST, free_port
from txmon_core.lifetime import Running, die_with_parent

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The daemons only schedule; the executor's heap comes from the worker's --memory.
DAEMON_MEMORY = "256m"


class SparkClusterError(RuntimeError):
    """The master or worker could not be started; the message carries the end of its log."""


def spark_home() -> Path:
    """The installed pyspark package folder, which holds Spark's bin/ and jars/ (pyspark is not imported)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SparkClusterError("pyspark is not installed in this Python")
    return Path(spec.origin).parent


class SparkStandalone(Running):
    """One standalone master and one worker on loopback; logs and the worker's scratch in `work_dir`."""

    def __init__(self, work_dir: Path, cores: int = 1, memory: str = "1g") -> None:
        self.work_dir = Path(work_dir)
        self.cores = cores
        self.memory = memory
        self.port = 0
        self.webui_port = 0
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def master_url(self) -> str:
        """The URL drivers pass as --master."""
        return f"spark://{HOST}:{self.port}"

    @property
    def status_url(self) -> str:
        """The master's status as JSON (workers, their state, running applications)."""
        return f"http://{HOST}:{self.webui_port}/json/"

    def log_path(self, name: str) -> Path:
        """The log of the `master` or the `worker`."""
        return self.work_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of a daemon's log, for error messages."""
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _launch(self, name: str, *arguments: str) -> None:
        home = spark_home()
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            # Otherwise the daemons bind, and advertise, the machine's outward-facing address.
            "SPARK_LOCAL_IP": HOST,
            "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
            "SPARK_LOG_DIR": str(self.work_dir),
        }
        if "JAVA_HOME" not in env:
            # spark-class takes java from JAVA_HOME or PATH; resolve it now for a clear error if missing.
            env["JAVA_HOME"] = str(Path(os.path.realpath(jars.find_tool("java"))).parent.parent)
        with open(self.log_path(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                [str(home / "bin" / "spark-class"), *arguments],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.work_dir,
                # Own group: a stop reaches the JVM under the launcher script; gone if we die.
                start_new_session=True, preexec_fn=die_with_parent(),
            )

    def start(self) -> None:
        """Start the master, then the worker; returns at once (see wait_ready)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port, self.webui_port = free_port(), free_port()
        try:
            self._launch("master", MASTER_CLASS, "--host", HOST, "--port", str(self.port),
                         "--webui-port", str(self.webui_port))
            # The worker retries its registration, so it may start before the master listens.
            self._launch("worker", WORKER_CLASS, self.master_url, "--host", HOST, "--cores", str(self.cores),
                         "--memory", self.memory, "--webui-port", str(free_port()),
                         "--work-dir", str(self.work_dir / "worker"))
        except BaseException:
            self.stop()
            raise

    def status(self) -> dict[str, object] | None:
        """The master's JSON status, or None while it does not answer."""
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def alive_workers(self) -> int:
        """How many workers the master counts as alive (0 while it does not answer)."""
        status = self.status() or {}
        return int(status.get("aliveworkers", 0))  # type: ignore[call-overload]

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Block until the master is alive with the worker registered; return the seconds waited."""
        started = time.monotonic()
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SparkClusterError(
                        f"the Spark {name} exited (code {process.returncode}):\n{self.log_tail(name)}"
                    )
            if self.alive_workers() >= 1:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise SparkClusterError(
                    f"no worker registered with {self.master_url} within {timeout:.0f} s:\n"
                    f"--- master:\n{self.log_tail('master')}\n--- worker:\n{self.log_tail('worker')}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the worker (with its executors), then the master: SIGTERM each group, SIGKILL later."""
        for name in ("worker", "master"):
            process = self.processes.get(name)
            if process is None:
                continue
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            # Whatever the group still holds (an executor JVM the worker did not reap) goes too.
            _signal_group(process, signal.SIGKILL)
            if process.poll() is None:
                process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` to the process group a daemon leads (its launcher script and JVM)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
