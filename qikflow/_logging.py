"""Logging set-up shared by every qikflow command, with a flood guard for every logger.

While a broker is down, client libraries (and a process's own retry loops) can log the same
warning many times a second. The guard sits on the root handler, so it sees every
logger's records (and on uvicorn's loggers, which have handlers of their own): each
distinct WARNING-or-worse message passes once per window, and the next one that passes
says how many were held back. Operators get the first line and a count, not a flood.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

REPEAT_WINDOW_S = 30.0
# `extra=` of a line the guard must always let through: the first line of a fault and the
# line of its end, which the fault's own state already keeps to one each (an outage that
# ends and begins again within the window must say so, not only that it ended).
ALWAYS = {"qikflow_always": True}
# uvicorn configures handlers of its own for these (they do not reach the root handler).
OWN_HANDLER_LOGGERS = ("uvicorn", "uvicorn.error")
# One INFO line per HTTP request is noise for every qikflow command.
QUIET_LOGGERS = ("httpx", "httpcore")
MAX_TRACKED = 1000
KEY_CHARS = 200


class RepeatFilter(logging.Filter):
    """Lets each distinct message template through once per window, then counts repeats.

    Messages are told apart by logger, level and the first line of their template (for
    already formatted messages, such as asyncio's "Future exception was never retrieved\\n
    future: <...>", the part that does not change).
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "qikflow_always", False):
            return True
        template = str(record.msg).partition("\n")[0][:KEY_CHARS]
        key = (record.name, record.levelno, template)
        now = self.clock()
        with self._lock:
            first, suppressed = self._seen.get(key, (-self.window_s, 0))
            if now - first < self.window_s:
                self._seen[key] = (first, suppressed + 1)
                return False
            if len(self._seen) >= MAX_TRACKED:
                self._forget_before(now - self.window_s)
            self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.msg} (and {suppressed} similar in the last {self.window_s:.0f}s)"
        return True

    def _forget_before(self, moment: float) -> None:
        for key in [k for k, (first, _) in self._seen.items() if first < moment]:
            del self._seen[key]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    repeat_filter = RepeatFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeat_filter)
    for name in OWN_HANDLER_LOGGERS:
        logging.getLogger(name).addFilter(repeat_filter)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def quiet_client_logs() -> None:
    """For interactive commands (tail, simulate): Kafka client chatter only when it matters."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
