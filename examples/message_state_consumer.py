"""Where is message X now: follow `<prefix>.message.state` and keep the latest state of
every outbound message, as another service would (see docs/topics.md#messagestate).

    python examples/message_state_consumer.py --bootstrap 127.0.0.1:9092 --prefix qikchat

Prints one line per state record; with `--idle-exit S` it stops after S seconds without a
new record and prints the current state of every message it saw. It needs only aiokafka
(and pydantic for the typed model); no qikflow code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer

State = dict[str, Any]


async def follow(bootstrap: str, prefix: str, idle_exit_s: float | None) -> dict[str, State]:
    consumer = AIOKafkaConsumer(
        f"{prefix}.message.state",
        bootstrap_servers=bootstrap,
        group_id=None,  # a real service: its own group_id, and commit after its writes
        auto_offset_reset="earliest",  # compacted: the start holds the latest of every key
        enable_auto_commit=False,
    )
    await consumer.start()
    current: dict[str, State] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int((idle_exit_s or 1) * 1000))
            if not batch and idle_exit_s is not None:
                break
            for records in batch.values():
                for record in records:
                    state = json.loads(record.value)
                    # A record is the whole merged state: the latest one per key wins.
                    current[state["message_id"]] = state
                    print(f"{state['message_id']}: {state['status']}"
                          f"{' (failed)' if state['failed'] else ''}, "
                          f"{state['callbacks']} callback(s), updated {state['updated_at']}")
    finally:
        await consumer.stop()
    return current


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--prefix", default="qikchat")
    parser.add_argument("--idle-exit", type=float, default=None, metavar="S")
    args = parser.parse_args()
    current = asyncio.run(follow(args.bootstrap, args.prefix, args.idle_exit))
    if args.idle_exit is not None:
        print(f"{len(current)} message(s):")
        for message_id, state in sorted(current.items()):
            print(f"  {message_id}: {state['status']}, read at {state['read_at']}")


if __name__ == "__main__":
    main()
