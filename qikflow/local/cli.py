"""`qikflow broker ...` and `qikflow pg ...`: manage the local Kafka and PostgreSQL."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from qikflow.config import DEFAULT_BOOTSTRAP, StateSettings


def register(subparsers: Any) -> None:
    broker = subparsers.add_parser(
        "broker",
        help="run a local single-node Apache Kafka (KRaft) from Maven Central jars",
        description=(
            "Manage a local Apache Kafka broker. Set QIKFLOW_KAFKA_BOOTSTRAP to use an "
            "existing cluster instead; then `start` only checks that it answers."
        ),
    )
    broker.add_argument("action", choices=["fetch", "start", "stop", "status", "wipe"])
    broker.add_argument("--port", type=int, default=None, help="client port (default 9092)")
    broker.add_argument("--name", default="default", help="instance name (data folder)")
    broker.set_defaults(handler=_broker)


def _broker(args: argparse.Namespace) -> int:
    from qikflow.local.kafka import LocalKafka, LocalKafkaError, answers_metadata

    external = os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP")
    if external and external != DEFAULT_BOOTSTRAP and args.port is None:
        reachable = answers_metadata(external)
        print(
            f"QIKFLOW_KAFKA_BOOTSTRAP={external} names an existing cluster; no local broker "
            f"is managed. It {'answers' if reachable else 'does NOT answer'} metadata requests."
        )
        return 0 if reachable or args.action in ("stop", "fetch") else 1
    broker = LocalKafka(home=StateSettings().home, name=args.name, port=args.port or 9092)
    try:
        if args.action == "fetch":
            broker.fetch()
            print(f"Kafka jars in {broker.libs_dir}")
        elif args.action == "start":
            broker.start()
            print(broker.status())
        elif args.action == "stop":
            print(f"kafka {broker.name}: {'stopped' if broker.stop() else 'was not running'}")
        elif args.action == "wipe":
            broker.wipe()
            print(f"kafka {broker.name}: stopped and data deleted")
        else:
            print(broker.status())
            return 0 if broker.pid() is not None else 3
    except LocalKafkaError as error:
        print(f"qikflow broker {args.action}: {error}", file=sys.stderr)
        return 1
    return 0
