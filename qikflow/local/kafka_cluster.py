"""A local Apache Kafka cluster of several KRaft nodes, for drills that lose a broker.

Every node has both roles (broker and controller) and votes in the metadata quorum, so
three nodes survive the loss of any one. Node `i` (from 1) listens for clients on
`port + 2(i-1)` and for the quorum on the port after it, and keeps its data under
`<home>/kafka/<name>/node-<i>/`. All nodes are formatted with one cluster id.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qikflow.local._process import wait_for_exit
from qikflow.local.kafka import LocalKafka, LocalKafkaError, answers_metadata, new_cluster_id

logger = logging.getLogger(__name__)

NODE_PREFIX = "node-"
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LocalKafkaCluster:
    """`size` local nodes forming one cluster named `name`."""

    home: Path
    name: str = "default"
    port: int = 9092
    size: int = 3

    @classmethod
    def existing_size(cls, home: Path, name: str) -> int:
        """How many nodes a cluster named `name` has on disk (0: it is a single broker)."""
        folder = home / "kafka" / name
        return sum(1 for path in folder.glob(f"{NODE_PREFIX}*") if path.is_dir())

    @cached_property
    def nodes(self) -> list[LocalKafka]:
        voters = ",".join(f"{i}@127.0.0.1:{self._client_port(i) + 1}"
                          for i in range(1, self.size + 1))
        return [
            LocalKafka(home=self.home, name=f"{self.name}/{NODE_PREFIX}{i}",
                       port=self._client_port(i), controller_port=self._client_port(i) + 1,
                       node_id=i, voters=voters, cluster_size=self.size)
            for i in range(1, self.size + 1)
        ]

    def _client_port(self, node_id: int) -> int:
        return self.port + 2 * (node_id - 1)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout_s: float = 120.0) -> None:
        """Start every node that is not running; return once all answer metadata requests.

        The nodes are launched together: a controller quorum of three elects a leader only
        once two of them run, so none of them serves before that."""
        if self.size < 1:
            raise LocalKafkaError(f"a cluster needs at least one node, not {self.size}")
        cluster_id = next((node.cluster_id() for node in self.nodes if node.cluster_id()),
                          None) or new_cluster_id()
        launched = [(node, node.launch(cluster_id)) for node in self.nodes
                    if not (node.pid() is not None and answers_metadata(node.bootstrap, 5))]
        for node, pid in launched:
            node.wait_ready(pid, timeout_s)
        logger.info("Kafka cluster %r of %d nodes ready on %s", self.name, self.size,
                    self.bootstrap)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop every node (SIGTERM to all at once, SIGKILL what is left after
        `timeout_s`); True if any was running.

        One by one, the last nodes would wait for a quorum that has already gone; together,
        each finishes its own shutdown (logs flushed) and none waits for the others."""
        pids = {node: node.pid() for node in self.nodes}
        running = {node: pid for node, pid in pids.items() if pid is not None}
        for pid in running.values():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for node, pid in running.items():
            if not wait_for_exit(pid, max(0.1, deadline - time.monotonic())):
                logger.warning("Kafka node %s (pid %d) still running %.0fs after SIGTERM; "
                               "killing it", node.name, pid, timeout_s)
                os.kill(pid, signal.SIGKILL)
                wait_for_exit(pid, 10)
        for node in self.nodes:
            node.pid_file.unlink(missing_ok=True)
        return bool(running)

    def wipe(self) -> None:
        """Stop every node and delete the cluster's data (keeps the fetched jars)."""
        self.stop()
        for node in self.nodes:
            node.wipe()

    def quorum_leader(self) -> int | None:
        """The node id that leads the metadata quorum, as the newest epoch on disk says."""
        seen = [leader for node in self.nodes if node.pid() is not None
                for leader in [node.quorum_leader()] if leader is not None]
        return max(seen, key=lambda leader: leader[1])[0] if seen else None

    def status(self) -> str:
        lines = [node.status() for node in self.nodes]
        leader = self.quorum_leader()
        lines.append(f"kafka {self.name}: {self.size} nodes, bootstrap {self.bootstrap}, "
                     f"quorum leader: {f'node {leader}' if leader else 'none'}")
        return "\n".join(lines)

    def running(self) -> int:
        """How many nodes run."""
        return sum(1 for node in self.nodes if node.pid() is not None)
