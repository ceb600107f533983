"""CPU seconds and peak RSS per named process, sampled with psutil while a benchmark runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass
class ProcessSample:
    """What was seen of one process: CPU seconds (user + system), peak RSS, and a window's start."""

    pid: int
    cpu_s: float = 0.0
    peak_rss: int = 0
    cpu_at_mark: float | None = None  # CPU seconds when the measured window began

    def as_dict(self, window_s: float | None) -> dict[str, Any]:
        """The JSON figures; cores_in_window is CPU seconds in the window over its wall seconds."""
        in_window = None if self.cpu_at_mark is None else self.cpu_s - self.cpu_at_mark
        return {
            "pid": self.pid,
            "cpu_s": round(self.cpu_s, 2),
            "cpu_s_in_window": None if in_window is None else round(in_window, 2),
            "cores_in_window": round(in_window / window_s, 3) if in_window is not None and window_s else None,
            "peak_rss_mib": round(self.peak_rss / 2**20, 1),
        }


@dataclass
class ProcessSampler:
    """Samples every registered process twice a second on a daemon thread.

    A process's last sample stands for its total, so call `sample_now()` before stopping one.
    Roles can be resolved late (the Spark JVM appears a few seconds after its Python driver).
    """

    interval: float = 0.5
    samples: dict[str, ProcessSample] = field(default_factory=dict)
    _finders: dict[str, Callable[[], int | None]] = field(default_factory=dict)
    _procs: dict[str, psutil.Process] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _marked: bool = False

    def watch(
        self, role: str, pid: int | None = None, finder: Callable[[], int | None] | None = None
    ) -> None:
        """Sample `pid` as `role`, or the pid `finder` returns once it returns one."""
        with self._lock:
            if pid is not None:
                self._attach(role, pid)
            elif finder is not None:
                self._finders[role] = finder

    def _attach(self, role: str, pid: int) -> None:
        try:
            self._procs[role] = psutil.Process(pid)
            # A process that starts inside the measured window spends all of its life in it.
            self.samples[role] = ProcessSample(pid, cpu_at_mark=0.0 if self._marked else None)
        except psutil.NoSuchProcess:
            pass

    def sample_now(self) -> None:
        """Take one sample of every process (and resolve pending roles)."""
        with self._lock:
            for role, finder in list(self._finders.items()):
                pid = finder()
                if pid is not None:
                    del self._finders[role]
                    self._attach(role, pid)
            for role, proc in list(self._procs.items()):
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss = proc.memory_info().rss
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    del self._procs[role]  # gone: its last sample stands
                    continue
                sample = self.samples[role]
                sample.cpu_s = times.user + times.system
                sample.peak_rss = max(sample.peak_rss, rss)

    def mark(self) -> None:
        """Start the measured window: later figures say how much CPU each process used since."""
        self.sample_now()
        with self._lock:
            self._marked = True
            for sample in self.samples.values():
                sample.cpu_at_mark = sample.cpu_s

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample_now()

    def start(self) -> None:
        """Start sampling in the background."""
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_now()

    def report(self, window_s: float | None) -> dict[str, Any]:
        """Per role: pid, CPU seconds (total and in the window), cores used in the window, peak RSS."""
        with self._lock:
            return {role: sample.as_dict(window_s) for role, sample in self.samples.items()}


LAUNCHER = "org.apache.spark.launcher.Main"  # names SparkSubmit among its arguments, runs for a second


def java_descendant(pid: int, main_class: str = "org.apache.spark.deploy.SparkSubmit") -> int | None:
    """The pid of the JVM below `pid` running `main_class` (pyspark's driver JVM), once it exists.

    spark-submit first runs a short-lived `java ... launcher.Main` to build the command line: that
    one must not be taken for the driver.
    """
    try:
        for child in psutil.Process(pid).children(recursive=True):
            command = child.cmdline()
            if child.name() == "java" and main_class in command and LAUNCHER not in command:
                return child.pid
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return None
