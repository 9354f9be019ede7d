"""Refusals logged as one summary line per period, never one line per request.

A scanner or a sender with a stale password can make thousands of refused requests a
minute; a line each would bury everything else in the log. The counts per reason are
Prometheus metrics (kept by the caller); this only tells the operator, once a period, what
was refused and which client addresses did the most of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

logger = logging.getLogger(__name__)

SUMMARY_PERIOD_S = 60.0
TOP_CLIENTS = 5
# Distinct addresses remembered per period: many spoofed or rotating clients must not
# grow memory; the rest are counted together as "other".
MAX_CLIENTS = 1000
OTHER_CLIENTS = "other"


class RefusalSummary:
    """Counts refusals by reason and client; logs one WARNING line at the end of each period.

    A period starts with the first refusal after a quiet one and lasts `period_s`; a period
    without refusals logs nothing.
    """

    def __init__(self, what: str, period_s: float = SUMMARY_PERIOD_S) -> None:
        self.what = what
        self.period_s = period_s
        self._reasons: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0

    def record(self, reason: str, client: str) -> None:
        """Count one refusal; the summary is logged `period_s` after the period's first."""
        if not self._reasons:
            self._since = time.monotonic()
        self._reasons[reason] += 1
        key = client or "unknown"
        if key in self._clients or len(self._clients) < MAX_CLIENTS:
            self._clients[key] += 1
        else:
            self._clients[OTHER_CLIENTS] += 1
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (a unit test): flush() is called by hand
            self._timer = loop.call_later(self.period_s, self.flush)

    def flush(self) -> None:
        """Log the period's summary (if anything was refused) and start a new period."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._reasons:
            return
        total = sum(self._reasons.values())
        reasons = ", ".join(f"{reason}={count}" for reason, count
                            in sorted(self._reasons.items(), key=lambda item: -item[1]))
        clients = ", ".join(f"{client} ({count})" for client, count
                            in self._clients.most_common(TOP_CLIENTS))
        logger.warning("refused %d %s in the last %.1f s: %s; top clients: %s",
                       total, self.what, time.monotonic() - self._since, reasons, clients)
        self._reasons.clear()
        self._clients.clear()
