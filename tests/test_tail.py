"""Tests of qikflow/tail.py: `qikflow tail` prints real records from the broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


def tail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QIKFLOW, "tail", *args], capture_output=True, text=True,
                          check=False, env=dict(os.environ), timeout=60)


async def test_tail_prints_records_with_headers_by_name_and_pattern(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(f"{topic_prefix}.raw", f"body-{i}".encode(),
                                         headers=[("qikflow-receipt-id", f"r{i}".encode())])
        await producer.send_and_wait(f"{topic_prefix}.status.read", b"{}", key=b"m1")
    finally:
        await producer.stop()

    by_name = tail(f"{topic_prefix}.raw", "--from-beginning", "-n", "3")
    assert by_name.returncode == 0, by_name.stderr
    for i in range(3):
        assert f"body-{i}" in by_name.stdout
        assert f"qikflow-receipt-id=r{i}" in by_name.stdout

    newest = tail(f"{topic_prefix}.raw", "-n", "1", "--timeout", "2")
    assert newest.stdout.count("body-") == 1

    by_pattern = tail(f"{topic_prefix}[.]status[.].*", "--from-beginning", "-n", "1")
    assert f"{topic_prefix}.status.read[" in by_pattern.stdout
    assert "key=m1" in by_pattern.stdout


def test_tail_of_a_missing_topic_says_so(kafka_bootstrap: str, topic_prefix: str) -> None:
    result = tail(f"{topic_prefix}.nothing")
    assert result.returncode == 1
    assert "no topic matches" in result.stderr
