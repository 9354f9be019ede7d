"""Tests of streams/worker.py: `qikflow worker --workers 2` shares the group, restarts, stops."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from qikflow.topics import Topics
from tests.streams._worker import (
    EVENTS_PATTERN,
    READY_S,
    REPO,
    WorkerCluster,
    WorkerProcess,
    event_id,
    read,
    routed_total,
    send_raw,
    traffic,
)


def test_two_supervised_workers_share_the_work_restart_and_stop_on_sigterm(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    log = tmp_path / "supervisor.log"
    bodies, expected = traffic(2000, "sup")
    with log.open("wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "qikflow", "--log-level", "INFO", "worker", "--workers", "2"],
            cwd=REPO, env=cluster.env(), stdout=out, stderr=subprocess.STDOUT,
        )
    # The children log to the supervisor's output; their metrics ports are base and base+1.
    workers = [WorkerProcess(i, supervisor, log, cluster.base_port + i) for i in range(2)]
    try:
        wait_for_log(supervisor, log, b"Worker ready", 2)
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, bodies))
        records = read(kafka_bootstrap, EVENTS_PATTERN.format(topic_prefix), len(expected))
        counters = [worker.metrics() for worker in workers]
        # A worker that dies is started again (after the default 1 s).
        started = re.search(rb"started worker-1 \(pid (\d+)\)", log.read_bytes())
        assert started is not None, log.read_text(errors="replace")[-3000:]
        os.kill(int(started.group(1)), signal.SIGKILL)
        wait_for_log(supervisor, log, b"started worker-1 (pid", 2)
        deadline = time.monotonic() + READY_S
        while not workers[1].metrics():  # the new worker-1 serves its metrics once started
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.3)
    finally:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=90)
        cluster.stop_all()
    assert {event_id(r) for r in records} == expected
    # Both processes joined the one group and read raw partitions.
    raw_read = [c.get("qikflow_streams_raw_records_total", 0.0) for c in counters]
    assert all(n > 0 for n in raw_read), raw_read
    assert sum(routed_total(c) for c in counters) >= len(expected)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    text = log.read_text(errors="replace")
    assert f"worker-1 (pid {int(started.group(1))}) exited with code -9; restarting in 1.0s " \
        "(restart #1)" in text
    assert text.count("all 2 workers stopped") == 1


def wait_for_log(process: subprocess.Popen[bytes], log: Path, line: bytes, count: int) -> None:
    deadline = time.monotonic() + READY_S
    while log.read_bytes().count(line) < count:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.3)
