"""Tying a child process's life to ours: Linux's PR_SET_PDEATHSIG, set between fork and exec."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

PR_SET_PDEATHSIG = 1
# Resolved once, in the parent: loading a library in the forked child could deadlock on a loader lock
# that another thread of the parent held at fork time. Between fork and exec only this call runs.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` that has Linux send `sig` to the child when its parent dies, however it dies.

    The signal is tied to the thread that forked: start children from a thread that lives as long as
    the process (or as long as the children should).
    """

    def set_death_signal() -> None:
        _prctl(PR_SET_PDEATHSIG, int(sig))

    return set_death_signal


R = TypeVar("R", bound="Running")


class Running:
    """`with thing:` starts it and waits until it is ready, and stops it however the block ends.

    For the processes txmon starts (the broker, a cluster, a Spark master and worker): a start that
    fails while waiting stops what it had started before the error goes on.
    """

    def start(self) -> Any:
        """Start the process(es); returns at once."""
        raise NotImplementedError

    def wait_ready(self) -> Any:
        """Block until ready, or raise."""
        raise NotImplementedError

    def stop(self) -> Any:
        """Stop cleanly, forcibly after a timeout."""
        raise NotImplementedError

    def __enter__(self: R) -> R:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
