"""Logging set-up shared by every qikflow command, with a flood guard for client libraries."""

from __future__ import annotations

import logging
import sys
import time

# While a broker is down, aiokafka logs the same connection error ~10 times a second.
# Operators need the first line and a count, not a flood.
REPEAT_WINDOW_S = 30.0
THROTTLED_LOGGERS = ("aiokafka", "kafka")
# One INFO line per HTTP request is noise for every qikflow command.
QUIET_LOGGERS = ("httpx", "httpcore")


class RepeatFilter(logging.Filter):
    """Lets each distinct message template through once per window, then counts repeats."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        first, suppressed = self._seen.get(key, (0.0, 0))
        if now - first < self.window_s:
            self._seen[key] = (first, suppressed + 1)
            return False
        self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.msg} (and {suppressed} similar in the last {self.window_s:.0f}s)"
        return True


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    repeat_filter = RepeatFilter()
    for name in THROTTLED_LOGGERS:
        logging.getLogger(name).addFilter(repeat_filter)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def quiet_client_logs() -> None:
    """For interactive commands (tail, simulate): Kafka client chatter only when it matters."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
