"""A bound on how long a worker takes to stop: it exits within QIKFLOW_STREAMS_STOP_TIMEOUT_S
of SIGTERM or SIGINT, whatever its agents are doing.

Faust stops gracefully: it waits until every record in flight is acknowledged
(`Consumer.wait_empty`), flushes the producer and commits. An agent that never finishes
(a handler stuck on I/O, code that never yields to the event loop, an output the broker
never confirms) makes that wait endless, and the worker ignores SIGTERM until something
kills it. So the first signal also starts a timer on a thread of its own, which runs even
while the event loop is blocked; if the worker is still there when it fires, it logs one
line and exits at once with EXIT_STOP_OVERDUE, committing nothing more: the records it
had not committed are read again on the next start, as after a crash.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import faust

logger = logging.getLogger(__name__)

# Exit status of a worker that did not stop in time (EX_SOFTWARE: an agent did not finish).
EXIT_STOP_OVERDUE = 70
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopDeadline:
    """Exits the process `timeout_s` after the first stop signal, unless it exited before."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        """Arm on SIGTERM and SIGINT, then hand each signal on to the handler already there.

        A Python-level handler runs between two bytecodes of the main thread even while
        the event loop is blocked, where a handler the loop dispatches would wait for it.
        """
        for signum in SIGNALS:
            previous = signal.getsignal(signum)

            def handler(number: int, frame: Any, previous: Any = previous) -> None:
                self.arm(signal.Signals(number).name)
                if callable(previous):
                    previous(number, frame)

            signal.signal(signum, handler)

    def arm(self, why: str) -> None:
        """Start the countdown (once; later signals do not extend it)."""
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.timeout_s, self._expire, args=(why,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, why: str) -> None:
        logger.critical("worker did not stop within %.0f s of %s (QIKFLOW_STREAMS_STOP_TIMEOUT_"
                        "S); exiting now: records it had not committed are read again on the "
                        "next start", self.timeout_s, why)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_STOP_OVERDUE)


class BoundedStopWorker(faust.Worker):
    """A Faust worker whose stop, once signalled, takes at most `stop_timeout_s`."""

    def __init__(self, *services: Any, stop_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        self.stop_deadline = StopDeadline(stop_timeout_s)

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()  # the event loop's handlers stop the worker
        self.stop_deadline.install()
