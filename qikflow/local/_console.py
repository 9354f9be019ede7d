"""What ends `qikflow up`, and its status output that survives a terminal or pipe going away.

SIGINT, SIGTERM, SIGHUP and a closed stdout all become one stop request, so the ordered
stop runs whatever ended the command. Python ignores SIGPIPE, so a write to a closed pipe
raises BrokenPipeError (a hung-up terminal gives EIO); either sends stdout to /dev/null
and asks for the stop instead of killing `up` half way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import sys

logger = logging.getLogger(__name__)

SIGNAL_REASONS = {
    signal.SIGINT: "Ctrl-C",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP: the terminal went away",
}


class StopRequest:
    """Set once, with the reason of the first request."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout_s: float) -> None:
        """Return when the stop is requested or after `timeout_s`, whichever comes first."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout_s)
        except TimeoutError:
            pass


class Console:
    """stdout of `qikflow up`: writes that never raise, and a stop when it closes."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop
        self.closed = False
        self._watched: int | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Turn the signals, and a pipe on stdout whose reader goes away, into stop requests."""
        for signum, reason in SIGNAL_REASONS.items():
            loop.add_signal_handler(signum, self.stop.request, reason)
        try:
            fd = sys.stdout.fileno()
            is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except (OSError, ValueError):
            return
        if is_pipe:
            # epoll reports an error on the writing end as soon as the reader closes it,
            # so the stop does not wait for the next refresh to find out.
            loop.add_reader(fd, self._closed_by_reader)
            self._watched = fd

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in SIGNAL_REASONS:
            loop.remove_signal_handler(signum)
        if self._watched is not None:
            loop.remove_reader(self._watched)
            self._watched = None

    def write(self, text: str) -> None:
        """Write and flush; once stdout is gone, log the text instead (to stderr)."""
        if self.closed:
            logger.info("%s", text.strip())
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as error:  # EPIPE: the reader closed it; EIO: the terminal hung up
            self._close(f"stdout closed ({error.strerror or error})")

    def _closed_by_reader(self) -> None:
        self._close("stdout closed: its reader went away")

    def _close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self._watched is not None:
            asyncio.get_running_loop().remove_reader(self._watched)
            self._watched = None
        # Buffered and later output goes nowhere instead of failing (also at exit).
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
        self.stop.request(reason)
