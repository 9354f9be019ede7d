"""The whole pipeline as real processes (ingest, worker, both sinks) for end-to-end drills.

Children run under the same Supervisor as `qikflow up`, so a killed process is restarted
the way an operator's supervisor (systemd, Kubernetes, `qikflow up`) would restart it.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from qikflow.config import KafkaSettings
from qikflow.local._process import wait_http_ok
from qikflow.simulate.generator import DEFAULT_START, generate
from qikflow.simulate.plan import GroundTruth, PlannedWebhook, body_digest
from qikflow.simulate.reconcile import ReconcileOptions, Reconciliation, reconcile
from qikflow.simulate.sender import SendReport, SendResult, WebhookSender
from qikflow.supervisor import ChildSpec, Supervisor
from tests._ports import free_port
from tests.e2e._proxy import Caddy
from tests.fixtures.kafka import TEST_PARTITIONS, consume, delete_topics

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))
USER, PASSWORD = "qikchat", "drill-secret"
# No answer from an ingest: the connection dropped (0), or the proxy says the replica gave
# none (502 Bad Gateway, 504 Gateway Timeout).
NO_ANSWER = frozenset({0, 502, 504})


@dataclass
class Pipeline:
    """ingest replica(s), the router worker and both sinks, with their own prefix and stores."""

    bootstrap: str
    database_url: str
    root: Path
    ingest_replicas: int = 1
    workers: int = 1  # `worker`, or `worker-0`, `worker-1`...: as on machines of their own
    prefix: str = field(default_factory=lambda: f"e{uuid.uuid4().hex[:10]}")
    ports: list[int] = field(default_factory=list)
    supervisor: Supervisor | None = None
    proxy: Caddy | None = None  # in front of the replicas when there are several

    @property
    def env(self) -> dict[str, str]:
        return {
            "QIKFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "QIKFLOW_TOPIC_PREFIX": self.prefix,
            "QIKFLOW_DATABASE_URL": self.database_url,
            "QIKFLOW_HOME": str(self.root / "home"),
            "QIKFLOW_LAKE_DIR": str(self.lake_dir),
            "QIKFLOW_SPOOL_DIR": str(self.root / "spool"),
            "QIKFLOW_WEBHOOK_USERS": f"{USER}:{PASSWORD}",
            "QIKFLOW_LAKE_ROLL_INTERVAL_S": "2",
            "QIKFLOW_STREAMS_WEB_PORT": str(free_port()),
            "QIKFLOW_TOPIC_PARTITIONS": TEST_PARTITIONS,
        }

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    async def start(self) -> None:
        self.ports = [free_port() for _ in range(self.ingest_replicas)]
        env = self.env
        specs = [
            ChildSpec(f"ingest-{i}", [QIKFLOW, "ingest", "--host", "127.0.0.1",
                                      "--port", str(port)], env)
            for i, port in enumerate(self.ports)
        ]
        specs += [self._worker(i) for i in range(self.workers)]
        specs += [
            ChildSpec("sink-postgres", [QIKFLOW, "sink", "postgres"], env),
            ChildSpec("sink-lake", [QIKFLOW, "sink", "lake"], env),
        ]
        self.supervisor = Supervisor(specs, self.root / "logs")
        await self.supervisor.start()
        for url in self.urls:
            await wait_http_ok(f"{url}/healthz")
        if self.ingest_replicas > 1:
            self.proxy = Caddy(free_port(), self.ports, self.root / "caddy")
            await self.proxy.start()

    def _worker(self, index: int) -> ChildSpec:
        if self.workers == 1:
            return ChildSpec("worker", [QIKFLOW, "worker"], self.env, stop_timeout_s=60)
        # As if on a machine of its own: its own state folder and web port.
        env = {**self.env, "QIKFLOW_HOME": str(self.root / f"home-worker-{index}"),
               "QIKFLOW_STREAMS_WEB_PORT": str(free_port())}
        return ChildSpec(f"worker-{index}", [QIKFLOW, "worker"], env, stop_timeout_s=60)

    def kill(self, name: str) -> None:
        """SIGKILL one child; the supervisor restarts it after a second."""
        assert self.supervisor is not None
        child = next(c for c in self.supervisor.children if c.spec.name == name)
        assert child.process is not None and child.running, f"{name} is not running"
        os.kill(child.process.pid, signal.SIGKILL)

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "logs").glob("*.log")):
            parts.append(f"--- {path.name} (last lines)\n" +
                         "\n".join(path.read_text(errors="replace").splitlines()[-25:]))
        return "\n".join(parts)

    async def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        if self.supervisor is not None:
            await self.supervisor.stop()
        await delete_topics(self.bootstrap, self.prefix)

    async def send(self, webhooks: list[PlannedWebhook], concurrency: int = 32) -> SendReport:
        """Send the webhooks to the ingest, or to the reverse proxy in front of the
        replicas when there are several (Caddy with `deploy/Caddyfile`, as in compose)."""
        url = self.proxy.url if self.proxy is not None else self.urls[0]
        return await WebhookSender(url, user=USER, password=PASSWORD,
                                   concurrency=concurrency).run(webhooks)

    async def settle_unanswered(self, report: SendReport, truth: GroundTruth,
                                webhooks: list[PlannedWebhook]) -> SendReport:
        """Count a request that got no answer (its process was killed; behind the proxy, a
        502 or 504 for a request the killed replica had taken) as accepted when its body
        reached `<prefix>.raw`: it is durable, so the pipeline must carry it through."""
        unanswered = [r for r in report.results if r.status_code in NO_ANSWER]
        if not unanswered:
            return report
        records = await consume(self.bootstrap, [f"{self.prefix}.raw"], expected=len(truth),
                                timeout_s=20)
        # A resend carries the bytes of an earlier webhook: a body in raw accounts for one
        # webhook only, and those answered 200 claim theirs first.
        landed = Counter(body_digest(r.value or b"") for r in records)
        by_index = {w.index: w for w in webhooks}
        landed.subtract(by_index[r.index].digest for r in report.results if r.status_code == 200)
        settled = []
        for result in report.results:
            digest = by_index[result.index].digest
            if result.status_code in NO_ANSWER and landed[digest] > 0:
                landed[digest] -= 1
                result = SendResult(result.index, 200, result.latency_s, result.started_s,
                                    result.lag_s, result.completion, None)
            settled.append(result)
        return merged(settled, report.elapsed_s)

    async def reconcile(self, truth: GroundTruth, report: SendReport, *,
                        worker_crashed: bool = False, timeout_s: float = 150
                        ) -> Reconciliation:
        kafka = KafkaSettings(bootstrap=self.bootstrap, topic_prefix=self.prefix)
        options = ReconcileOptions(kafka=kafka, database_url=self.database_url,
                                   lake_dir=self.lake_dir, timeout_s=timeout_s,
                                   routed_copies_allowed=worker_crashed)
        return await reconcile(truth, report, options)


def merged(results: list[SendResult], elapsed_s: float) -> SendReport:
    results = sorted(results, key=lambda r: r.index)
    return SendReport(results=results, elapsed_s=elapsed_s,
                      ok=sum(1 for r in results if r.status_code == 200))


def traffic(seed: int, rate_per_s: float, duration_s: float
            ) -> tuple[list[PlannedWebhook], GroundTruth]:
    """Simulated Qikchat traffic with ids of its own (a fresh start time per drill)."""
    start = DEFAULT_START.replace(microsecond=seed % 1_000_000)
    webhooks, truth = generate(seed=seed, rate_per_s=rate_per_s, duration_s=duration_s,
                               start=start)
    return list(webhooks), truth
