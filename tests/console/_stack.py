"""The whole stack for the console's end-to-end tests: ingest, worker, both sinks and the
console, as real processes under the Supervisor that `qikflow up` uses, on the shared broker
and PostgreSQL with a prefix and a database of their own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

from qikflow.config import KafkaSettings
from qikflow.local._process import wait_http_ok
from qikflow.operations.pipeline import Pipeline
from qikflow.supervisor import ChildSpec, Supervisor
from tests._ports import free_port
from tests.console._learner import FLAG_ENV
from tests.e2e._pipeline import PASSWORD, QIKFLOW, USER
from tests.fixtures.kafka import TEST_PARTITIONS, delete_topics

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.2


async def until(check: Callable[[], Awaitable[T]], what: str, timeout_s: float = 60.0) -> T:
    """The first truthy result of `check`, asked again every POLL_S; an AssertionError
    naming `what` after `timeout_s` (the pipeline's stages answer asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f}s")
        await asyncio.sleep(POLL_S)
CONSOLE_USER, CONSOLE_PASSWORD = "operator", "console-secret"


@dataclass
class ConsoleStack:
    bootstrap: str
    database_url: str
    root: Path
    prefix: str = field(default_factory=lambda: f"c{uuid.uuid4().hex[:10]}")
    ports: dict[str, int] = field(default_factory=dict)
    supervisor: Supervisor | None = None

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self.bootstrap, topic_prefix=self.prefix,
                             topic_partitions=int(TEST_PARTITIONS))

    @property
    def pipeline(self) -> Pipeline:
        return Pipeline(self.kafka, self.database_url, self.root / "lake", self.root / "spool")

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['console']}"

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}"

    @property
    def learned_flag(self) -> Path:
        return self.root / "learned"

    def env(self) -> dict[str, str]:
        metrics = ",".join(f"{name}=http://127.0.0.1:{self.ports[name]}/metrics"
                           for name in ("ingest", "worker", "sink-postgres", "sink-lake"))
        return {
            "PYTHONPATH": str(REPO),
            "QIKFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "QIKFLOW_TOPIC_PREFIX": self.prefix,
            "QIKFLOW_TOPIC_PARTITIONS": TEST_PARTITIONS,
            "QIKFLOW_DATABASE_URL": self.database_url,
            "QIKFLOW_HOME": str(self.root / "home"),
            "QIKFLOW_LAKE_DIR": str(self.root / "lake"),
            "QIKFLOW_SPOOL_DIR": str(self.root / "spool"),
            "QIKFLOW_LAKE_ROLL_INTERVAL_S": "2",
            "QIKFLOW_WEBHOOK_USERS": f"{USER}:{PASSWORD}",
            # Small enough that the per-type topics a sink creates first, at the broker's
            # default size, hold the events of the largest body (the worker checks).
            "QIKFLOW_MAX_BODY_BYTES": "262144",
            "QIKFLOW_STREAMS_WEB_PORT": str(self.ports["worker"]),
            "QIKFLOW_STREAMS_EXTRA_AGENTS": "tests.console._learner",
            FLAG_ENV: str(self.learned_flag),
            "QIKFLOW_CONSOLE_USERS": f"{CONSOLE_USER}:{CONSOLE_PASSWORD}",
            "QIKFLOW_CONSOLE_METRICS": metrics,
            "QIKFLOW_CONSOLE_AUDIT_FILE": str(self.root / "audit.jsonl"),
        }

    async def start(self) -> None:
        self.ports = {name: free_port() for name in
                      ("ingest", "worker", "sink-postgres", "sink-lake", "console")}
        env, ports = self.env(), self.ports
        specs = [
            ChildSpec("ingest", [QIKFLOW, "ingest", "--host", "127.0.0.1",
                                 "--port", str(ports["ingest"])], env),
            ChildSpec("worker", [QIKFLOW, "worker"], env, stop_timeout_s=60),
            *(ChildSpec(f"sink-{sink}", [QIKFLOW, "sink", sink, "--metrics-port",
                                         str(ports[f"sink-{sink}"])], env)
              for sink in ("postgres", "lake")),
            ChildSpec("console", [QIKFLOW, "console", "--port", str(ports["console"])], env),
        ]
        self.supervisor = Supervisor(specs, self.root / "logs")
        await self.supervisor.start()
        await wait_http_ok(f"{self.ingest_url}/healthz", 60)
        await wait_http_ok(f"{self.console_url}/healthz", 60)

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        await delete_topics(self.bootstrap, self.prefix)

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n" + "\n".join(
            path.read_text(errors="replace").splitlines()[-30:])
            for path in sorted((self.root / "logs").glob("*.log")))

    async def send(self, body: bytes, account: str = "acme") -> str:
        """POST one webhook; its receipt id."""
        async with httpx.AsyncClient(auth=(USER, PASSWORD), timeout=10) as client:
            answer = await client.post(f"{self.ingest_url}/webhooks/qikchat/{account}",
                                       content=body,
                                       headers={"content-type": "application/json"})
        answer.raise_for_status()
        receipt: str = answer.json()["receipt_id"]
        return receipt

    async def rows(self, query: str, *args: Any, expected: int = 1,
                   timeout_s: float = 60.0) -> list[asyncpg.Record]:
        """The rows of `query` once there are `expected` of them."""
        connection = await asyncpg.connect(self.database_url)

        async def enough() -> list[asyncpg.Record]:
            try:
                rows = await connection.fetch(query, *args)
            except asyncpg.UndefinedTableError:
                return []  # the sink has not migrated yet
            return rows if len(rows) >= expected else []

        try:
            return await until(enough, f"{expected} row(s) of {query}", timeout_s)
        finally:
            await connection.close()
