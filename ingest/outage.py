"""One Kafka outage as the ingest sees it: when and why it began, what it cost, two log lines.

An outage logs one WARNING when it begins and one INFO line when it is over (Kafka takes
writes and the spools are empty) with the bodies spooled and drained meanwhile. In
between, the Kafka client's own warnings and errors (a connection refused, a metadata
update that failed, each retried every few seconds) only repeat it: they are held back,
and the last of them is kept as the outage's `last_error`, which /readyz shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qikflow._logging import ALWAYS

logger = logging.getLogger(__name__)

# aiokafka's loggers that report connections and requests (each has its own name, and a
# logger's filters see only the records made on it).
CLIENT_LOGGERS = ("aiokafka", "aiokafka.conn", "aiokafka.cluster", "aiokafka.admin.client",
                  "aiokafka.producer.producer", "aiokafka.producer.sender")
ERROR_CHARS = 300


@dataclass
class Outage:
    """One stretch of time during which Kafka did not take writes."""

    reason: str
    bootstrap: str
    started: float
    spooled: int = 0
    drained: int = 0
    last_error: str = ""

    @classmethod
    def begin(cls, reason: str, bootstrap: str, spool: Path) -> Outage:
        logger.warning("Kafka at %s unavailable (%s); new bodies go to the spool %s until "
                       "it recovers", bootstrap, reason, spool, extra=ALWAYS)
        return cls(reason, bootstrap, time.monotonic())

    def age_s(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        last = f"; last error: {self.last_error}" if self.last_error else ""
        return (f"Kafka at {self.bootstrap} unavailable for {self.age_s():.0f}s "
                f"({self.reason}{last})")

    def end(self, topic: str) -> None:
        logger.info(
            "Kafka at %s takes writes again; outage of %.1fs over (it began with: %s): %d "
            "bodies spooled meanwhile, %d drained into %s, none left",
            self.bootstrap, self.age_s(), self.reason, self.spooled, self.drained, topic,
        )


class ClientQuiet(logging.Filter):
    """Holds back the Kafka client's WARNING and ERROR lines while an outage is reported."""

    def __init__(self, current: Callable[[], Outage | None]) -> None:
        super().__init__()
        self._current = current

    def filter(self, record: logging.LogRecord) -> bool:
        outage = self._current()
        if outage is None or not logging.WARNING <= record.levelno < logging.CRITICAL:
            return True
        outage.last_error = record.getMessage()[:ERROR_CHARS]
        return False

    def install(self) -> None:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).removeFilter(self)
