"""Python's garbage collector tuned for a loop that allocates a few dozen objects a request.

With the default thresholds (700, 10, 10) the collector ran every few requests and, every
so often, scanned every object of the app, uvicorn, aiokafka and the SQLite spool: `perf`
put it at about 11 % of the ingest's CPU under load (docs/performance.md). Reference
counting frees nearly everything a request makes; the collector only finds cycles. So,
once start-up is over, what it made is frozen out of every scan, and the first generation
is collected after YOUNG_THRESHOLD allocations instead of 700: fewer passes, each as cheap
(the young objects are few and short-lived). The streams worker does the same
(`streams.worker.tune_gc`).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (20, 100)


def tune_gc() -> None:
    """Freeze what exists now and raise the first generation's threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
