"""The Faust application of the streams worker, built by a factory so tests set env first."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import faust
from mode.utils.queues import ThrowableQueue

from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from streams import dedup
from streams._kept_queue import KeptOnResumeQueue
from streams._metrics import StreamsMetrics
from streams._seek import RewindingTransport
from streams._take import ArrivingStream
from streams.agents import register_agents
from streams.budget import WorkerBudget
from streams.context import StreamsApp
from streams.settings import StreamsSettings
from streams.state import state_dir

if TYPE_CHECKING:
    from faust.types import TransportT
    from faust.types.auth import CredentialsT

logger = logging.getLogger(__name__)


def create_app(
    kafka: KafkaSettings | None = None,
    settings: StreamsSettings | None = None,
    *,
    worker_index: int = 0,
    cluster_id: str,
) -> StreamsApp:
    """The Faust app of worker `worker_index`, with dedup and every agent, keeping its state
    for the Kafka cluster `cluster_id` (`state.py`).

    The router (stage 1) is not a Faust agent: `worker.py` runs a `RawRouter` beside it.
    """
    kafka = kafka or KafkaSettings()
    settings = settings or StreamsSettings()
    topics = Topics.from_settings(kafka)
    budget = WorkerBudget.from_settings(settings)
    datadir = state_dir(settings.data_dir, cluster_id, topics.streams_group, worker_index)
    datadir.mkdir(parents=True, exist_ok=True)
    app = StreamsFaustApp(
        # The app id is the consumer group: every worker of one prefix shares partitions.
        topics.streams_group,
        broker=[f"kafka://{host.strip()}" for host in kafka.bootstrap.split(",")],
        broker_credentials=credentials(kafka),
        store="rocksdb://",
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        topic_partitions=kafka.topic_partitions,
        topic_replication_factor=kafka.topic_replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        producer_linger_ms=settings.producer_linger_ms,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        producer_max_request_size=budget.agents_request_bytes,
        producer_acks=-1,
        consumer_max_fetch_size=max(settings.consumer_max_fetch_bytes,
                                    budget.keyed.batch_bytes, budget.event.batch_bytes),
        consumer_auto_offset_reset="earliest",
        # Loopback unless told otherwise: Faust's pages show the host and its partitions.
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port + worker_index,
        web_in_thread=False,
        # Agents get bytes and decode them themselves: with Faust's default (json) a body
        # that is not JSON fails before the agent sees it, and the agent crashes.
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        # Agents take batches that end when the stream goes quiet (`_take.py`).
        Stream=ArrivingStream,
    )
    streams = StreamsApp(app, topics, settings, kafka, StreamsMetrics(), budget)
    streams.metrics.expose(app)
    app.on_partitions_revoked.connect(_commit_before_handing_over)
    dedup.register(streams)
    register_agents(streams)
    return streams


async def _commit_before_handing_over(
    app: Any, /, *revoked: Any, signal: Any, **kwargs: Any
) -> None:
    """Commit what is done before a rebalance moves partitions away.

    Faust waits for its streams and flushes the producer on revocation, but does not commit
    (at-least-once), so the next owner would route again everything since the last timed
    commit. By now every record in flight is delivered and acked; one loop turn lets the
    delivery callbacks run, then the commit hands the partitions over with nothing to redo.
    """
    await asyncio.sleep(0)
    await app.consumer.commit()


class StreamsFaustApp(faust.App):
    """Faust's App, with stream buffers that a rebalance does not empty of the records of
    partitions the worker keeps (`_kept_queue.py`), and a consumer that rewinds partitions
    never committed when Faust seeks to the committed offsets (`_seek.py`)."""

    def _new_transport(self) -> TransportT:
        return RewindingTransport(self.conf.broker_consumer, self)

    def FlowControlQueue(
        self, maxsize: int | None = None, *, clear_on_resume: bool = False,
    ) -> ThrowableQueue[Any]:
        return KeptOnResumeQueue(
            maxsize=maxsize, flow_control=self.flow_control, clear_on_resume=clear_on_resume,
            assigned=self.consumer.assignment, on_kept=self._count_kept)

    def _count_kept(self, count: int) -> None:
        logger.info("a rebalance would have dropped %d buffered record(s) of partitions this "
                    "worker keeps (faust-streaming#596); kept them", count)


def credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Faust credentials carrying the same SASL/SSL settings as every aiokafka client."""
    context = kafka.ssl_context()
    if kafka.security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            ssl_context=context,
            mechanism=kafka.sasl_mechanism or "PLAIN",
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None

