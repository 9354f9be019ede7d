"""`qikflow up`: the whole local pipeline in one command (what `make run` ends in).

Starts or reuses Kafka and PostgreSQL, then the ingest, the router worker and both sinks
as supervised children, and shows one status view until Ctrl-C, which stops everything
in pipeline order: ingest first (it flushes or spools what it holds), then the worker,
then the sinks, then the services this command started itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from qikflow.config import KafkaSettings, StateSettings
from qikflow.local._status import render, take_snapshot
from qikflow.local.kafka import LocalKafka
from qikflow.supervisor import ChildSpec, Supervisor
from qikflow.topics import Topics

logger = logging.getLogger(__name__)

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))
REFRESH_TTY_S = 2.0
REFRESH_LOG_S = 30.0
WEBHOOK_USER = "qikchat"
LOCAL_LAKE_ROLL_S = 15


@dataclass
class UpOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    refresh_s: float | None = None


@dataclass
class Services:
    """Where Kafka and PostgreSQL are, and which of them this command started."""

    bootstrap: str
    database_url: str
    started_kafka: LocalKafka | None = None
    started_pg: object | None = None  # LocalPostgres; typed loosely to keep imports lazy


def ensure_services(home: Path) -> Services:
    bootstrap = os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP")
    started_kafka = None
    if not bootstrap:
        broker = LocalKafka(home=home)
        if broker.pid() is None:
            started_kafka = broker
        broker.start()
        bootstrap = broker.bootstrap
    database_url = os.environ.get("QIKFLOW_DATABASE_URL")
    started_pg = None
    if not database_url:
        from qikflow.local.postgres import LocalPostgres

        postgres = LocalPostgres(home=home)
        if not postgres.running():
            started_pg = postgres
        postgres.start()
        database_url = postgres.url()
    return Services(bootstrap, database_url, started_kafka, started_pg)


def ensure_credentials(home: Path) -> str:
    """Make sure the ingest has credentials; say where they come from."""
    if os.environ.get("QIKFLOW_WEBHOOK_USERS"):
        return "from QIKFLOW_WEBHOOK_USERS"
    if os.environ.get("QIKFLOW_WEBHOOK_USERS_FILE"):
        return f"from {os.environ['QIKFLOW_WEBHOOK_USERS_FILE']}"
    if os.environ.get("QIKFLOW_ALLOW_ANONYMOUS", "").lower() == "true":
        return "NONE (QIKFLOW_ALLOW_ANONYMOUS=true)"
    path = home / "webhook-users"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{WEBHOOK_USER}:{secrets.token_urlsafe(18)}\n")
        path.chmod(0o600)
    os.environ["QIKFLOW_WEBHOOK_USERS_FILE"] = str(path)
    return f"generated for local use, in {path} (user:password)"


def children(options: UpOptions, env: dict[str, str]) -> list[ChildSpec]:
    """In stop order: what receives first stops first."""
    return [
        ChildSpec("ingest", [QIKFLOW, "ingest", "--host", options.host,
                             "--port", str(options.port)], env, stop_timeout_s=30),
        ChildSpec("worker", [QIKFLOW, "worker", "--workers", str(options.workers)], env,
                  stop_timeout_s=60),
        ChildSpec("sink-postgres", [QIKFLOW, "sink", "postgres"], env, stop_timeout_s=60),
        ChildSpec("sink-lake", [QIKFLOW, "sink", "lake"], env, stop_timeout_s=60),
    ]


async def run_up(options: UpOptions) -> int:
    home = StateSettings().home
    services = ensure_services(home)
    credentials = ensure_credentials(home)
    env = {
        "QIKFLOW_KAFKA_BOOTSTRAP": services.bootstrap,
        "QIKFLOW_DATABASE_URL": services.database_url,
        # Locally, lake files should show up while you watch; production keeps 300 s.
        "QIKFLOW_LAKE_ROLL_INTERVAL_S": os.environ.get("QIKFLOW_LAKE_ROLL_INTERVAL_S",
                                                       str(LOCAL_LAKE_ROLL_S)),
    }
    os.environ.update(env)
    kafka = KafkaSettings()
    from sinks.settings import SinkSettings

    lake_dir = SinkSettings().lake_dir
    supervisor = Supervisor(children(options, env), home / "logs")
    await supervisor.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    webhook = f"http://{options.host}:{options.port}/webhooks/qikchat"
    header = [
        f"qikflow up: webhooks at {webhook} (POST, Basic Auth)",
        f"  credentials: {credentials}",
        f"  metrics: http://{options.host}:{options.port}/metrics   "
        f"logs: {home / 'logs'}",
        f"  Kafka {services.bootstrap} (topics {kafka.topic_prefix}.*)   "
        f"PostgreSQL {_redact(services.database_url)}   lake {lake_dir}",
        "  Ctrl-C stops everything in order.",
    ]
    tty = sys.stdout.isatty()
    refresh = options.refresh_s or (REFRESH_TTY_S if tty else REFRESH_LOG_S)
    topics = Topics.from_settings(kafka)
    groups = topics.groups(["postgres", "lake"])
    while not stop.is_set():
        snapshot = await take_snapshot(kafka, groups, services.database_url, lake_dir)
        lines = [f"{c.spec.name:<14} {c.describe()}" for c in supervisor.children]
        panel = render(snapshot, kafka.topic_prefix, header, lines)
        sys.stdout.write(("\x1b[2J\x1b[H" if tty else "\n") + panel + "\n")
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), refresh)

    print("\nstopping: ingest, worker, sinks, then local services ...", flush=True)
    await supervisor.stop()
    if services.started_pg is not None:
        services.started_pg.stop()  # type: ignore[attr-defined]
    if services.started_kafka is not None:
        services.started_kafka.stop()
    print("stopped; nothing in flight was lost (Kafka and the spool keep what was accepted)")
    return 0


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
