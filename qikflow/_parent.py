"""The child side of `qikflow/supervisor.py`: a supervised process stops when its parent dies.

The supervisor names itself in `QIKFLOW_PARENT_PID`; every `qikflow` command calls
`watch_parent()` once at start. On Linux the kernel then sends SIGTERM the moment the
parent dies, whatever killed it (SIGKILL included), so the child runs its own clean stop;
elsewhere a thread polls `os.getppid()`. Each process reads the variable and removes it,
so its own children (uvicorn or worker processes) are never mistaken for its supervisor's.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

PARENT_PID_ENV = "QIKFLOW_PARENT_PID"
POLL_INTERVAL_S = 1.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ParentGoneError(RuntimeError):
    """The supervisor that started this process died before it could watch it."""


def watch_parent(*, use_prctl: bool = True, poll_interval_s: float = POLL_INTERVAL_S) -> None:
    """Arrange SIGTERM for this process when its supervisor dies; no-op when unsupervised.

    Raises ParentGoneError when the supervisor is already gone: the process must not start.
    """
    value = os.environ.pop(PARENT_PID_ENV, None)
    if not value:
        return
    try:
        parent = int(value)
    except ValueError:
        logger.warning("ignoring %s=%r: not a process id; this process will not stop "
                       "with its parent", PARENT_PID_ENV, value)
        return
    watched = use_prctl and sys.platform.startswith("linux") and _set_parent_death_signal()
    # Checked after arranging the signal: a parent that died before that is seen here.
    if os.getppid() != parent:
        raise ParentGoneError(f"the supervisor (pid {parent}) that started this process is "
                              "gone; not starting")
    if not watched:
        threading.Thread(target=_poll_parent, args=(parent, poll_interval_s),
                         name="parent-watch", daemon=True).start()


def _set_parent_death_signal() -> bool:
    """prctl(PR_SET_PDEATHSIG, SIGTERM): True when the kernel accepted it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        accepted = bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
    if not accepted:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed (%s); polling the parent instead",
                       os.strerror(ctypes.get_errno()))
    return accepted


def _poll_parent(parent: int, interval_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    logger.warning("the supervisor (pid %d) is gone; stopping this process", parent)
    os.kill(os.getpid(), signal.SIGTERM)
