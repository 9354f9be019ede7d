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
        help="run a local Apache Kafka (KRaft; one node, or --nodes 3) from Maven Central jars",
        description=(
            "Manage a local Apache Kafka broker. Set QIKFLOW_KAFKA_BOOTSTRAP to use an "
            "existing cluster instead; then `start` only checks that it answers."
        ),
    )
    broker.add_argument("action", choices=["fetch", "start", "stop", "status", "wipe"])
    broker.add_argument("--port", type=int, default=None, help="client port (default 9092)")
    broker.add_argument("--name", default="default", help="instance name (data folder)")
    broker.add_argument(
        "--nodes", type=int, default=None,
        help="start: nodes of a local KRaft cluster (default 1; 3 for drills that lose a "
             "broker: node i on port+2(i-1)); stop, status and wipe act on all nodes",
    )
    broker.set_defaults(handler=_broker)
    register_pg(subparsers)
    register_up(subparsers)


def register_up(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up",
        help="run the whole local pipeline: Kafka, PostgreSQL, ingest, worker, both sinks",
        description=(
            "Start or reuse the local Kafka and PostgreSQL (or use QIKFLOW_KAFKA_BOOTSTRAP and "
            "QIKFLOW_DATABASE_URL), then supervise the ingest, the router worker and both "
            "sinks, restarting any that crash. Ctrl-C, SIGTERM, SIGHUP, a closed stdout or "
            "`qikflow down` stop everything in order; killed outright, it still takes its "
            "processes with it."
        ),
    )
    up.add_argument("--host", default="127.0.0.1", help="ingest bind address (127.0.0.1)")
    up.add_argument("--port", type=int, default=8080, help="ingest port (default 8080)")
    up.add_argument("--workers", type=int, default=1, help="router worker processes (1)")
    up.add_argument("--refresh", type=float, default=None,
                    help="status refresh seconds (default 2 on a terminal, 30 otherwise)")
    up.set_defaults(handler=_up)
    down = subparsers.add_parser(
        "down",
        help="stop the stack a `qikflow up` left running (from another terminal, or after "
             "it was killed)",
        description=(
            "Stop the qikflow up recorded in <home>/up.json in pipeline order: ingest, "
            "worker, sinks, then the local Kafka and PostgreSQL only if that up started "
            "them. With nothing running, says so and exits 0."
        ),
    )
    down.set_defaults(handler=_down)


def _up(args: argparse.Namespace) -> int:
    import asyncio

    from qikflow.local._stack import StackRecordError
    from qikflow.local.kafka import LocalKafkaError
    from qikflow.local.postgres import LocalPostgresError
    from qikflow.local.up import UpOptions, run_up

    problem = _bad_up_option(args)
    if problem is not None:
        print(f"qikflow up: {problem}", file=sys.stderr)
        return 2
    options = UpOptions(args.host, args.port, args.workers, args.refresh)
    try:
        return asyncio.run(run_up(options))
    except (LocalKafkaError, LocalPostgresError, StackRecordError) as error:
        print(f"qikflow up: {error}", file=sys.stderr)
        return 1


def _bad_up_option(args: argparse.Namespace) -> str | None:
    if not 1 <= args.port <= 65535:
        return f"--port must be between 1 and 65535, not {args.port}"
    if args.workers < 1:
        return f"--workers must be at least 1, not {args.workers}"
    if args.refresh is not None and not args.refresh > 0:
        return f"--refresh must be a positive number of seconds, not {args.refresh}"
    return None


def _down(args: argparse.Namespace) -> int:
    from qikflow.local._stack import StackRecordError
    from qikflow.local.down import run_down

    try:
        return run_down(StateSettings().home)
    except (StackRecordError, PermissionError) as error:
        print(f"qikflow down: {error}", file=sys.stderr)
        return 1


def _broker(args: argparse.Namespace) -> int:
    from qikflow.local.kafka import LocalKafka, LocalKafkaError, answers_metadata
    from qikflow.local.kafka_cluster import LocalKafkaCluster

    external = os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP")
    # `fetch` always fetches: the test suite's own brokers need the jars in any case.
    if (external and external != DEFAULT_BOOTSTRAP and args.port is None
            and args.action != "fetch"):
        reachable = answers_metadata(external)
        print(
            f"QIKFLOW_KAFKA_BOOTSTRAP={external} names an existing cluster; no local broker "
            f"is managed. It {'answers' if reachable else 'does NOT answer'} metadata requests."
        )
        return 0 if reachable or args.action == "stop" else 1
    home = StateSettings().home
    nodes = args.nodes or LocalKafkaCluster.existing_size(home, args.name) or 1
    if nodes < 1:
        print("qikflow broker: --nodes must be at least 1", file=sys.stderr)
        return 2
    broker: LocalKafka | LocalKafkaCluster = (
        LocalKafka(home=home, name=args.name, port=args.port or 9092) if nodes == 1
        else LocalKafkaCluster(home=home, name=args.name, port=args.port or 9092, size=nodes)
    )
    if args.action == "fetch":
        try:
            LocalKafka(home=home).fetch()
        except LocalKafkaError as error:
            print(f"qikflow broker fetch: {error}", file=sys.stderr)
            return 1
        print(f"Kafka jars in {LocalKafka(home=home).libs_dir}")
        return 0
    try:
        if args.action == "start":
            broker.start()
            print(broker.status())
        elif args.action == "stop":
            print(f"kafka {broker.name}: {'stopped' if broker.stop() else 'was not running'}")
        elif args.action == "wipe":
            broker.wipe()
            print(f"kafka {broker.name}: stopped and data deleted")
        else:
            print(broker.status())
            running = (broker.pid() is not None if isinstance(broker, LocalKafka)
                       else broker.running() == broker.size)
            return 0 if running else 3
    except LocalKafkaError as error:
        print(f"qikflow broker {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


def register_pg(subparsers: Any) -> None:
    pg = subparsers.add_parser(
        "pg",
        help="run a local PostgreSQL from the pgserver package under <home>/pg",
        description=(
            "Manage the local PostgreSQL that sinks use when QIKFLOW_DATABASE_URL is unset. "
            "`url` prints the connection URL to export as QIKFLOW_DATABASE_URL."
        ),
    )
    pg.add_argument("action", choices=["start", "stop", "status", "url", "wipe"])
    pg.add_argument("--port", type=int, default=None, help="TCP port (default 54329)")
    pg.add_argument("--name", default="pg", help="instance folder under the home (default pg)")
    pg.set_defaults(handler=_pg)


def _pg(args: argparse.Namespace) -> int:
    from qikflow.local.postgres import DEFAULT_PORT, LocalPostgres, LocalPostgresError

    server = LocalPostgres(
        home=StateSettings().home, name=args.name, port=args.port or DEFAULT_PORT
    )
    try:
        if args.action == "start":
            server.start()
            print(server.status())
        elif args.action == "stop":
            print(f"postgres {server.name}: {'stopped' if server.stop() else 'was not running'}")
        elif args.action == "wipe":
            server.wipe()
            print(f"postgres {server.name}: stopped and data deleted")
        elif args.action == "url":
            print(server.url())
        else:
            print(server.status())
            return 0 if server.running() else 3
    except LocalPostgresError as error:
        print(f"qikflow pg {args.action}: {error}", file=sys.stderr)
        return 1
    return 0
