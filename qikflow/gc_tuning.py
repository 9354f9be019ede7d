"""Python's garbage collector tuned for a process that allocates per request or record,
once it has started: the ingest, the streams worker and the sinks.

With the default thresholds (700, 10, 10) the collector ran every few requests or events
and, every so often, scanned every object start-up made (modules, pydantic schemas, the
Faust app, RocksDB bindings, the Kafka clients): `perf` put it at about 11 % of the
ingest's CPU under load, and tuning it made the worker ~25 % faster (docs/performance.md).
Reference counting frees nearly everything a request makes; the collector only finds
cycles. So what start-up made is frozen out of every scan, and the first generation is
collected after YOUNG_THRESHOLD allocations instead of 700: fewer passes, each as cheap
(the young objects are few and short-lived). A cycle that holds a large buffer lives until
the next pass: code on the hot path must not make one (`ingest/_one_write.py`).
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
