"""A local Apache Kafka node (KRaft, combined broker and controller) from Maven Central jars.

One node is the default local broker; `kafka_cluster.py` runs several as one cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from qikflow.local._process import pid_alive, read_pid, spawn_detached, wait_for_exit

logger = logging.getLogger(__name__)

KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
HEAP = "-Xmx512m"


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, formatted, started or stopped."""


@dataclass(frozen=True)
class LocalKafka:
    """One local broker instance: its jars, its data and log folders, its ports."""

    home: Path
    name: str = "default"
    port: int = 9092
    controller_port: int | None = None
    node_id: int = 1
    # `id@host:port,...` of every controller of the cluster; this node alone when None.
    voters: str | None = None
    # How many nodes the cluster has: internal topics are replicated over up to three.
    cluster_size: int = 1

    @property
    def libs_dir(self) -> Path:
        return self.home / "kafka" / "libs"

    @property
    def instance_dir(self) -> Path:
        return self.home / "kafka" / self.name

    @property
    def data_dir(self) -> Path:
        return self.instance_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.instance_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.instance_dir / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def _controller_port(self) -> int:
        return self.controller_port or self.port + 1

    # -- fetch -------------------------------------------------------------

    def fetched(self) -> bool:
        return any(self.libs_dir.glob("kafka_2.13-*.jar"))

    def fetch(self) -> None:
        """Resolve the Kafka jars from Maven Central into `libs_dir` (once)."""
        if self.fetched():
            return
        _require("java", "Install Java 17+ (Debian: apt-get install openjdk-17-jre-headless).")
        _require("mvn", "Install Maven (Debian: apt-get install maven).")
        pom = resources.files("qikflow.local").joinpath("kafka-pom.xml")
        with resources.as_file(pom) as pom_path:
            command = [
                "mvn", "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs_dir.resolve()}", "-DincludeScope=runtime",
            ]
            logger.info("fetching Kafka jars from Maven Central into %s", self.libs_dir)
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not self.fetched():
            raise LocalKafkaError(
                "Maven could not resolve org.apache.kafka:kafka_2.13 from Maven Central:\n"
                f"{(result.stdout + result.stderr)[-2000:]}\n"
                "Check network access to Maven Central, or skip the local broker and point "
                "QIKFLOW_KAFKA_BOOTSTRAP at an existing cluster."
            )

    # -- start / stop ------------------------------------------------------

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and pid_alive(pid) else None

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the broker if it is not running; return once it answers metadata requests."""
        if self.pid() is not None and answers_metadata(self.bootstrap, timeout_s=5):
            logger.info("Kafka %r already running on %s", self.name, self.bootstrap)
            return
        pid = self.launch()
        self.wait_ready(pid, timeout_s)

    def launch(self, cluster_id: str | None = None) -> int:
        """Format the storage on first use (with `cluster_id`, or a new one) and start the
        JVM; return its pid without waiting for it to serve."""
        self.fetch()
        _require("java", "Install Java 17 or newer, or point QIKFLOW_KAFKA_BOOTSTRAP elsewhere.")
        for port in (self.port, self._controller_port):
            if _port_in_use(port):
                raise LocalKafkaError(
                    f"port {port} is taken by another process; stop it or choose another "
                    "--port (or point QIKFLOW_KAFKA_BOOTSTRAP at that broker if it is Kafka)"
                )
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format(config, cluster_id or new_cluster_id())
        classpath = f"{self.libs_dir.resolve()}/*"
        command = [
            "java", HEAP, "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._write_log_config()}",
            f"-Dkafka.logs.dir={self.instance_dir.resolve()}",
            "-cp", classpath, KAFKA_MAIN, str(config),
        ]
        pid = spawn_detached(command, self.instance_dir / "stdout.log")
        self.pid_file.write_text(str(pid))
        return pid

    def wait_ready(self, pid: int, timeout_s: float) -> None:
        """Return once the node started as `pid` answers metadata requests."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                raise LocalKafkaError(
                    f"Kafka exited while starting; see {self.log_file} and "
                    f"{self.instance_dir / 'stdout.log'}"
                )
            if answers_metadata(self.bootstrap, timeout_s=2):
                logger.info("Kafka %r ready on %s (pid %d)", self.name, self.bootstrap, pid)
                return
            time.sleep(0.3)
        raise LocalKafkaError(f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after `timeout_s`). True if it ran."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not wait_for_exit(pid, timeout_s):
            logger.warning("Kafka pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout_s)
            os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker: for fault tests only."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, 10)

    def wipe(self) -> None:
        """Stop the broker and delete its data (keeps the fetched jars)."""
        self.stop()
        shutil.rmtree(self.instance_dir, ignore_errors=True)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"kafka {self.name}: stopped (data {self.data_dir})"
        state = "ready" if answers_metadata(self.bootstrap, timeout_s=3) else "not answering"
        return (
            f"kafka {self.name}: {state} on {self.bootstrap} (pid {pid}, "
            f"data {self.data_dir}, log {self.log_file})"
        )

    # -- files -------------------------------------------------------------

    def cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with, or None before that."""
        try:
            for line in (self.data_dir / "meta.properties").read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.removeprefix("cluster.id=").strip()
        except FileNotFoundError:
            return None
        return None

    def quorum_leader(self) -> tuple[int, int] | None:
        """(leader id, leader epoch) of the metadata quorum as this node last saw it."""
        state = self.data_dir / "__cluster_metadata-0" / "quorum-state"
        try:
            data = json.loads(state.read_text())
        except (FileNotFoundError, ValueError):
            return None
        leader, epoch = data.get("leaderId", -1), data.get("leaderEpoch", -1)
        return (int(leader), int(epoch)) if leader is not None and leader >= 0 else None

    def _write_config(self) -> Path:
        path = self.instance_dir / "server.properties"
        controller = f"127.0.0.1:{self._controller_port}"
        replicas = min(self.cluster_size, 3)
        min_insync = 2 if replicas >= 3 else 1
        path.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters or f'{self.node_id}@{controller}'}",
                    f"listeners=PLAINTEXT://{self.bootstrap},CONTROLLER://{controller}",
                    f"advertised.listeners=PLAINTEXT://{self.bootstrap}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data_dir.resolve()}",
                    "num.partitions=6",
                    f"default.replication.factor={replicas}",
                    f"min.insync.replicas={min_insync}",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=12",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_insync}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_insync}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        return path

    def _write_log_config(self) -> Path:
        path = self.instance_dir / "log4j2.properties"
        path.write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = RollingFile",
                    "appender.file.name = file",
                    f"appender.file.fileName = {self.log_file.resolve()}",
                    f"appender.file.filePattern = {self.log_file.resolve()}.%i",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "appender.file.policies.type = Policies",
                    "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
                    "appender.file.policies.size.size = 20MB",
                    "appender.file.strategy.type = DefaultRolloverStrategy",
                    "appender.file.strategy.max = 3",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    "",
                ]
            )
        )
        return path

    def _format(self, config: Path, cluster_id: str) -> None:
        classpath = f"{self.libs_dir.resolve()}/*"
        result = subprocess.run(
            ["java", "-cp", classpath, STORAGE_TOOL, "format", f"--cluster-id={cluster_id}",
             "-c", str(config)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting {self.data_dir} failed:\n{result.stdout}{result.stderr}"
            )
        logger.info("formatted Kafka storage in %s (cluster %s)", self.data_dir, cluster_id)


def answers_metadata(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when a broker at `bootstrap` answers a metadata request within `timeout_s`."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not _port_in_use(int(port), host or "127.0.0.1"):
        return False
    # A thread of its own, so that callers inside a running event loop can use it too.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _answers_metadata(bootstrap, timeout_s)).result()


async def _answers_metadata(bootstrap: str, timeout_s: float) -> bool:
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()


def new_cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding. Like
    # Kafka's own Uuid.randomUuid(), avoid a leading "-", which command lines misread.
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _require(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        raise LocalKafkaError(f"`{tool}` is not on PATH. {hint}")
