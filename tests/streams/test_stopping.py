"""The stop bound (`streams/stopping.py`): SIGTERM stops a worker within
QIKFLOW_STREAMS_STOP_TIMEOUT_S (default 20 s) even while an agent blocks its event loop, and
what it had not committed is read again on the next start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from qikflow.topics import Topics
from streams.settings import StreamsSettings
from streams.stopping import EXIT_STOP_OVERDUE
from tests.streams._worker import READY_S, WorkerCluster, WorkerProcess, read, send_raw, text_body
from tests.streams.blocking_agent import BLOCKING, SAW

# Enough for the bound and the exit; a worker past it has not kept the bound.
WAIT_S = 90.0


def wait_for(worker: WorkerProcess, line: str) -> None:
    deadline = time.monotonic() + READY_S
    while line not in worker.log.read_text(errors="replace"):
        assert worker.process.poll() is None, worker.log.read_text()[-3000:]
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.2)


def test_sigterm_stops_a_worker_whose_agent_blocks_and_the_record_is_read_again(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    assert StreamsSettings().stop_timeout_s == 20.0
    topics = Topics(topic_prefix)
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path,
                            extra_agents="tests.streams.blocking_agent")
    try:
        worker = cluster.start()
        bodies = [text_body("wamid.BEFORE", "hello"), text_body("wamid.BLOCK", "block the loop")]
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, bodies))
        wait_for(worker, f"{BLOCKING} wamid.BLOCK")
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
        log = worker.log.read_text(errors="replace")
        assert code == EXIT_STOP_OVERDUE, log[-3000:]
        assert "did not stop within 20 s of SIGTERM" in log
        assert log.count("did not stop within") == 1

        again = cluster.start()
        wait_for(again, f"{SAW} wamid.BLOCK")  # not committed: read again
        assert again.stop() == 0, again.log.read_text()[-3000:]  # and stops cleanly
        routed = read(kafka_bootstrap, rf"^{topic_prefix}\.message\.text$", 2)
        assert {r.key for r in routed} == {b"+919876543210"}
    finally:
        cluster.stop_all()
