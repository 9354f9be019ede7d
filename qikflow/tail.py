"""`qikflow tail`: print records of qikflow topics, for the tour and for 3 a.m. debugging."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any


def register(subparsers: Any) -> None:
    tail = subparsers.add_parser(
        "tail",
        help="print records of a topic or topic pattern (key, headers, value)",
        description=(
            "Read records of one topic, or of every topic matching a regular expression, "
            "and print each with its partition, offset, key, headers and value. Reads "
            "without a consumer group, so it never moves anyone's offsets."
        ),
    )
    tail.add_argument("topic", help="topic name or regex (qikchat.raw, 'qikchat[.]status[.].*')")
    tail.add_argument("-n", "--count", type=int, default=10,
                      help="stop after this many records (default 10; 0: keep following)")
    tail.add_argument("--from-beginning", action="store_true",
                      help="start at the oldest record instead of the newest ones")
    tail.add_argument("--timeout", type=float, default=5.0,
                      help="stop after this many seconds without a new record (default 5)")
    tail.set_defaults(handler=_tail)


def _tail(args: argparse.Namespace) -> int:
    from qikflow._logging import quiet_client_logs
    from qikflow.config import KafkaSettings

    quiet_client_logs()

    return asyncio.run(tail(KafkaSettings(), args.topic, args.count, args.from_beginning,
                            args.timeout))


async def tail(kafka: Any, topic: str, count: int, from_beginning: bool,
               idle_timeout_s: float) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        pattern = re.compile(topic)
        names = sorted(t for t in await admin.list_topics() if pattern.fullmatch(t))
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    if not names:
        print(f"no topic matches {topic!r} on {kafka.bootstrap}", file=sys.stderr)
        return 1
    partitions = [TopicPartition(t["topic"], p["partition"])
                  for t in described for p in t["partitions"]]
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    printed = 0
    try:
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            # The newest `count` records of each partition (or only new ones when following).
            ends = await consumer.end_offsets(partitions)
            for partition, end in ends.items():
                consumer.seek(partition, max(0, end - count) if count else end)
        while count == 0 or printed < count:
            batch = await consumer.getmany(timeout_ms=int(idle_timeout_s * 1000))
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    print(_format(record))
                    printed += 1
                    if count and printed >= count:
                        return 0
    finally:
        await consumer.stop()
    if printed == 0:
        print(f"no records in {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}",
              file=sys.stderr)
    return 0


def _format(record: Any) -> str:
    key = record.key.decode("utf-8", "replace") if record.key else "-"
    headers = " ".join(f"{name}={value.decode('utf-8', 'replace')}"
                       for name, value in record.headers)
    value = (record.value or b"").decode("utf-8", "replace")
    return (f"{record.topic}[{record.partition}]@{record.offset} key={key}\n"
            f"  headers: {headers or '-'}\n  {value}")
