"""streams/_take.py in a real worker: a batch is handed over as soon as the stream goes
quiet, not when its window runs out. With a window of 120 s, events sent one at a time
are each routed long before it would end; Faust's `take_events` would hold every one of
them for the whole window."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.streams._worker import EVENTS_PATTERN, WorkerCluster, read, send_raw, text_body

WINDOW_S = 120


def test_events_are_routed_without_waiting_out_the_batch_window(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
) -> None:
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path,
                            extra_env={"QIKFLOW_STREAMS_BATCH_WITHIN_S": str(WINDOW_S)})
    try:
        cluster.start()
        pattern = EVENTS_PATTERN.format(topic_prefix)
        for n in range(1, 4):  # one after the other: each batch must end for the next
            asyncio.run(send_raw(kafka_bootstrap, f"{topic_prefix}.raw",
                                 [text_body(f"wamid.TAKE{n}", f"hello {n}")]))
            routed = read(kafka_bootstrap, pattern, n, timeout_s=WINDOW_S / 4)
            assert len(routed) == n, f"event {n} waited for the batch window"
    finally:
        cluster.stop_all()
