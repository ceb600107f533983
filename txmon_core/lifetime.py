"""Tying a child process's life to ours: Linux's PR_SET_PDEATHSIG, set between fork and exec."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

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
