"""`qikflow up`: the whole local pipeline in one command (what `make run` ends in).

Starts or reuses Kafka and PostgreSQL, then the operator console, the ingest, the router
worker and both sinks as supervised children, and shows one status view until Ctrl-C,
SIGTERM, SIGHUP, a closed stdout or `qikflow down` ends it. Each of them runs the same
ordered stop: the console first (no re-drive starts while the pipeline stops), the ingest
(it flushes or spools what it holds), then the worker, then the sinks, then the services
this command started itself. Killed outright (SIGKILL), `up` still takes its children
with it: they watch their parent (`qikflow/_parent.py`). What runs is recorded in
`<home>/up.json` (`qikflow/local/_stack.py`) for the next `up` and for `qikflow down`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from qikflow.config import KafkaSettings, StateSettings
from qikflow.local._console import Console, StopRequest
from qikflow.local._process import bind_error, command_line, listening_pids
from qikflow.local._stack import ServiceRef, StackRecord
from qikflow.local._status import render, take_snapshot
from qikflow.local.kafka import LocalKafka, LocalKafkaError
from qikflow.local.postgres import LocalPostgres, LocalPostgresError
from qikflow.supervisor import ChildSpec, ChildState, Supervisor
from qikflow.topics import Topics

logger = logging.getLogger(__name__)

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))
REFRESH_TTY_S = 2.0
REFRESH_LOG_S = 30.0
WEBHOOK_USER = "qikchat"
LOCAL_LAKE_ROLL_S = 15
CONSOLE_USER = "ops"
# Ports of the other local servers, counted from the ingest's --port (8080: the console on
# 8090, the sinks' /metrics on 8101 and 8102), so one --port moves the whole stack.
CONSOLE_PORT_OFFSET = 10
SINK_METRICS_PORT_OFFSETS = {"postgres": 21, "lake": 22}


@dataclass
class UpOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    refresh_s: float | None = None


def ensure_services(home: Path, record: StackRecord) -> tuple[str, str]:
    """Kafka bootstrap and PostgreSQL URL: from the environment, else local ones.

    A local service this call starts goes into `record` at once, so that the stop (or
    `qikflow down`) finds it even when starting the next one fails.
    """
    bootstrap = os.environ.get("QIKFLOW_KAFKA_BOOTSTRAP")
    if not bootstrap:
        broker = LocalKafka(home=home)
        if broker.pid() is None:
            record.add_service(ServiceRef("kafka", broker.name, broker.port))
            record.write(home)
        broker.start()
        bootstrap = broker.bootstrap
    database_url = os.environ.get("QIKFLOW_DATABASE_URL")
    if not database_url:
        postgres = LocalPostgres(home=home)
        if not postgres.running():
            record.add_service(ServiceRef("postgres", postgres.name, postgres.port))
            record.write(home)
        postgres.start()
        database_url = postgres.url()
    return bootstrap, database_url


def ensure_credentials(home: Path) -> str:
    """Make sure the ingest has credentials; say where they come from."""
    if os.environ.get("QIKFLOW_WEBHOOK_USERS"):
        return "from QIKFLOW_WEBHOOK_USERS"
    if os.environ.get("QIKFLOW_WEBHOOK_USERS_FILE"):
        return f"from {os.environ['QIKFLOW_WEBHOOK_USERS_FILE']}"
    if os.environ.get("QIKFLOW_ALLOW_ANONYMOUS", "").lower() == "true":
        return "NONE (QIKFLOW_ALLOW_ANONYMOUS=true)"
    path = _local_users(home / "webhook-users", WEBHOOK_USER)
    os.environ["QIKFLOW_WEBHOOK_USERS_FILE"] = str(path)
    return f"generated for local use, in {path} (user:password)"


def ensure_console_credentials(home: Path) -> str:
    """Make sure the console has a log-in; say where it comes from."""
    for name in ("QIKFLOW_CONSOLE_USERS", "QIKFLOW_CONSOLE_USERS_FILE"):
        if os.environ.get(name):
            return f"log-in from {name}"
    path = _local_users(home / "console-users", CONSOLE_USER)
    os.environ["QIKFLOW_CONSOLE_USERS_FILE"] = str(path)
    return f"log-in in {path}"


def _local_users(path: Path, user: str) -> Path:
    """A `user:password` file for local use, made once, readable by this user only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{user}:{secrets.token_urlsafe(18)}\n")
        path.chmod(0o600)
    return path


def children(options: UpOptions, env: dict[str, str], *,
             sink_metrics_ports: dict[str, int] | None = None) -> list[ChildSpec]:
    """In stop order: what receives first stops first."""
    def sink(name: str) -> ChildSpec:
        port = (sink_metrics_ports or {}).get(name)
        metrics = ["--metrics-port", str(port)] if port is not None else []
        return ChildSpec(f"sink-{name}", [QIKFLOW, "sink", name, *metrics], env,
                         stop_timeout_s=60)

    return [
        ChildSpec("ingest", [QIKFLOW, "ingest", "--host", options.host,
                             "--port", str(options.port)], env, stop_timeout_s=30),
        ChildSpec("worker", [QIKFLOW, "worker", "--workers", str(options.workers)], env,
                  stop_timeout_s=60),
        sink("postgres"),
        sink("lake"),
    ]


def sink_metrics_ports(options: UpOptions) -> dict[str, int]:
    return {name: options.port + offset for name, offset in SINK_METRICS_PORT_OFFSETS.items()}


def console_child(options: UpOptions, env: dict[str, str]) -> ChildSpec:
    """The operator console, reading the metrics of `up`'s other children."""
    from streams.settings import StreamsSettings

    web_port = StreamsSettings().web_port
    targets = [f"ingest=http://127.0.0.1:{options.port}/metrics",
               *(f"worker-{i}=http://127.0.0.1:{web_port + i}/metrics"
                 for i in range(options.workers)),
               *(f"sink-{name}=http://127.0.0.1:{port}/metrics"
                 for name, port in sink_metrics_ports(options).items())]
    return ChildSpec("console", [QIKFLOW, "console", "--host", options.host,
                                 "--port", str(options.port + CONSOLE_PORT_OFFSET)],
                     {**env, "QIKFLOW_CONSOLE_METRICS": ",".join(targets)}, stop_timeout_s=15)


def preflight(home: Path, options: UpOptions) -> tuple[str | None, list[ServiceRef]]:
    """What keeps `up` from starting, as one line; and what a killed earlier `up` left.

    Raises StackRecordError when the record of an earlier `up` cannot be read.
    """
    earlier = StackRecord.read(home)
    left: list[ServiceRef] = []
    if earlier is not None:
        problem = earlier.left_running()
        if problem is not None:
            return problem, []
        left = [service for service in earlier.services if service.running(home)]
        logger.warning(
            "the earlier %s ended without stopping; its processes are gone%s",
            earlier.describe(),
            "; this one will stop what it started: " + ", ".join(s.describe() for s in left)
            if left else "",
        )
    error = bind_error(options.host, options.port)
    if error is None:
        return None, left
    if error.errno != errno.EADDRINUSE:
        return f"cannot listen on {options.host}:{options.port}: {error}; check --host", []
    holders = listening_pids(options.port)
    who = ", ".join(f"pid {pid} ({command_line(pid)})" for pid in holders) or (
        f"a process this user cannot inspect (`ss -ltnp 'sport = :{options.port}'` names it)")
    return (f"port {options.port} is already taken by {who}; stop it, or choose another "
            "port with --port"), []


async def run_up(options: UpOptions) -> int:
    """Start the stack, show its status until something ends `up`, stop it in order."""
    home = StateSettings().home
    problem, left = preflight(home, options)
    if problem is not None:
        print(f"qikflow up: {problem}", file=sys.stderr)
        return 1
    stop = StopRequest()
    console = Console(stop)
    loop = asyncio.get_running_loop()
    console.install(loop)
    record = StackRecord.for_this_process(options.host, options.port)
    for service in left:
        record.add_service(service)
    record.write(home)
    supervisor: Supervisor | None = None
    try:
        bootstrap, database_url = ensure_services(home, record)
        credentials = ensure_credentials(home)
        console_login = ensure_console_credentials(home)
        env = {
            "QIKFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "QIKFLOW_DATABASE_URL": database_url,
            # Locally, lake files should show up while you watch; production keeps 300 s.
            "QIKFLOW_LAKE_ROLL_INTERVAL_S": os.environ.get("QIKFLOW_LAKE_ROLL_INTERVAL_S",
                                                           str(LOCAL_LAKE_ROLL_S)),
        }
        os.environ.update(env)

        def remember(child: ChildState) -> None:
            assert child.process is not None
            record.set_child(child.spec.name, child.process.pid, child.spec.stop_timeout_s)
            record.write(home)

        specs = [console_child(options, env),
                 *children(options, env, sink_metrics_ports=sink_metrics_ports(options))]
        supervisor = Supervisor(specs, home / "logs", on_spawn=remember)
        if not stop.is_set():
            await supervisor.start()
        header = _header(options, home, credentials, bootstrap, database_url)
        console_url = f"http://{options.host}:{options.port + CONSOLE_PORT_OFFSET}"
        header.insert(2, f"  console: {console_url} ({console_login})")
        await _show_status(options, console, stop, supervisor, header, database_url)
    finally:
        console.write(f"\nstopping ({stop.reason or 'after an error'}): console, ingest, "
                      "worker, sinks, then the local services this command started ...\n")
        if supervisor is not None:
            await supervisor.stop()
        stopped = stop_services(home, record.services)
        if stopped:
            StackRecord.remove(home)
        console.uninstall(loop)
    if not stopped:
        return 1
    console.write("stopped; nothing in flight was lost (Kafka and the spool keep what was "
                  "accepted)\n")
    return 0


def stop_services(home: Path, services: list[ServiceRef]) -> bool:
    """Stop the local services a stack started; False (and one line each) where one failed."""
    stopped = True
    # PostgreSQL first: the sinks are gone, and Kafka keeps what they did not read.
    for service in sorted(services, key=lambda s: s.kind != "postgres"):
        try:
            service.instance(home).stop()
        except (LocalKafkaError, LocalPostgresError) as error:
            logger.error("could not stop %s: %s; `qikflow down` tries again", service.describe(),
                         error)
            stopped = False
    return stopped


def _header(options: UpOptions, home: Path, credentials: str, bootstrap: str,
            database_url: str) -> list[str]:
    from sinks.settings import SinkSettings

    webhook = f"http://{options.host}:{options.port}/webhooks/qikchat"
    return [
        f"qikflow up: webhooks at {webhook} (POST, Basic Auth)",
        f"  credentials: {credentials}",
        f"  metrics: http://{options.host}:{options.port}/metrics   logs: {home / 'logs'}",
        f"  Kafka {bootstrap} (topics {KafkaSettings().topic_prefix}.*)   "
        f"PostgreSQL {_redact(database_url)}   lake {SinkSettings().lake_dir}",
        "  Ctrl-C stops everything in order; so does `qikflow down` from another terminal.",
    ]


async def _show_status(options: UpOptions, console: Console, stop: StopRequest,
                       supervisor: Supervisor, header: list[str], database_url: str) -> None:
    from sinks.settings import SinkSettings

    kafka = KafkaSettings()
    lake_dir = SinkSettings().lake_dir
    tty = sys.stdout.isatty()
    refresh = options.refresh_s or (REFRESH_TTY_S if tty else REFRESH_LOG_S)
    groups = Topics.from_settings(kafka).groups(["postgres", "lake"])
    while not stop.is_set():
        snapshot = await take_snapshot(kafka, groups, database_url, lake_dir)
        lines = [f"{c.spec.name:<14} {c.describe()}" for c in supervisor.children]
        panel = render(snapshot, kafka.topic_prefix, header, lines)
        if not stop.is_set():
            console.write(("\x1b[2J\x1b[H" if tty else "\n") + panel + "\n")
        await stop.wait(refresh)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
