"""Real worker runs shared by the tests of the router, dedup, the agents and the schemas.

Starting a worker takes seconds, so the tests that only look at what it wrote share a run:
`routing_run` goes over one corpus (every parser fixture, bodies that are no event, copies
of one event, an opt-out and a near miss, a text the test-only failing agent raises on,
and events too big for one bundle); `refused_run` writes records the broker refuses to
take; `live` is a worker at the default limits that tests send hostile bodies to, each
followed by a normal text that must still be routed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from qikflow.config import KafkaSettings
from qikflow.kafka_admin import topic_configs
from qikflow.size_budget import TOPIC_LIMIT
from qikflow.topics import Topics
from streams import headers as names
from streams.agents.optout import optout_event, preference_optout
from streams.budget import WorkerBudget
from streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw
from streams.settings import StreamsSettings
from tests.streams import fixtures
from tests.streams._outcomes import Outcome, OutcomeReader
from tests.streams._worker import (
    WorkerCluster,
    WorkerProcess,
    header,
    raw_record,
    read,
    send_raw,
    status_body,
    text_body,
)

NOT_JSON = b"\x00this is not json"
JSON_ARRAY = b"[1, 2, 3]"
NO_EVENT = b'{"hello": "world"}'
DUPLICATE_TEXT = text_body("wamid.DUP1", "Where is my parcel?")
DUPLICATE_STATUS = status_body("OUTDUP1", "delivered")
NEAR_MISS = text_body("wamid.NEAR1", "stop by tomorrow")
BOOM = text_body("wamid.BOOM1", "this one goes boom")
AFTER_BOOM = text_body("wamid.AFTER1", "STOP please")
# One Meta body whose text events (each ~2 x LARGE_TEXT_BYTES: the body and the raw message)
# share a contact, so a keyed partition: more than one bundle of the default size can hold.
LARGE_MESSAGES = 4
LARGE_TEXT_BYTES = 200_000
LARGE_BATCH = orjson.dumps({
    "object": "whatsapp_business_account",
    "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "918041234567"},
        "messages": [
            {"from": "919811111111", "id": f"wamid.LARGE{n}", "timestamp": "1763643146",
             "type": "text", "text": {"body": "z" * LARGE_TEXT_BYTES}}
            for n in range(LARGE_MESSAGES)
        ],
    }}]}],
})
# The broker refuses records above SMALL_TOPIC_BYTES on the topics of BIG_UNKNOWN and BIG_TEXT.
SMALL_TOPIC_BYTES = 1024
BIG_UNKNOWN = orjson.dumps({"hello": "x" * 3000})
BIG_TEXT = text_body("wamid.BIG1", "y" * 3000)
SMALL_STATUS = status_body("OUTSMALL1", "delivered")
DEFAULT_LIMIT_BYTES = WorkerBudget.from_settings(StreamsSettings()).event.batch_bytes


@dataclass
class RoutingRun:
    """What one worker wrote for the corpus, plus what parse_raw says it should have."""

    topics: Topics
    bodies: list[bytes]
    expected_events: dict[str, str]  # event id -> type
    expected_unknown: list[bytes]
    expected_undecodable: list[bytes]
    expected_optouts: set[str]  # optout event ids
    events: list[ConsumerRecord]
    unknown: list[ConsumerRecord]
    dlq: list[ConsumerRecord]
    optout: list[ConsumerRecord]
    metrics: dict[str, float]


def corpus() -> list[bytes]:
    bodies = [(fixtures.DIRECTORY / f"{name}.json").read_bytes() for name in fixtures.names()]
    return [
        *bodies, NOT_JSON, JSON_ARRAY, NO_EVENT, DUPLICATE_TEXT, DUPLICATE_STATUS, NEAR_MISS,
        BOOM, DUPLICATE_TEXT, DUPLICATE_STATUS, AFTER_BOOM, LARGE_BATCH,
    ]


@pytest.fixture(scope="session")
def routing_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[RoutingRun]:
    topics = Topics(f"t{uuid.uuid4().hex[:10]}")
    home: Path = tmp_path_factory.mktemp("routing")
    cluster = WorkerCluster(kafka_bootstrap, topics.prefix, home,
                            extra_agents="tests.streams.failing_agent")
    bodies = corpus()
    expected_events: dict[str, str] = {}
    unknown: list[bytes] = []
    undecodable: list[bytes] = []
    optouts: set[str] = set()
    for body in bodies:
        outcome = parse_raw(raw_record(body))
        if isinstance(outcome, Parsed):
            expected_events.update({e.event_id: e.type for e in outcome.events})
            optouts.update(
                o.event_id for o in map(optout_event, outcome.events) if o is not None
            )
            optouts.update(o.event_id for o in map(preference_optout, outcome.notices)
                           if o is not None)
        elif isinstance(outcome, Unrecognised):
            unknown.append(body)
        elif isinstance(outcome, Undecodable):
            undecodable.append(body)
    worker = cluster.start()
    try:
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, bodies))
        prefix = topics.prefix
        events = read(kafka_bootstrap, topics.events_pattern, len(expected_events))
        unknown_records = read(kafka_bootstrap, rf"^{prefix}\.unknown$", len(unknown))
        # The dead-letter topic also gets the text the failing agent raised on.
        dlq = read(kafka_bootstrap, rf"^{prefix}\.dlq$", len(undecodable) + 1)
        optout = read(kafka_bootstrap, rf"^{prefix}\.contact\.optout$", len(optouts))
        yield RoutingRun(topics, bodies, expected_events, unknown, undecodable, optouts, events,
                         unknown_records, dlq, optout, worker.metrics())
    finally:
        cluster.stop_all()


@dataclass
class RefusedRun:
    """What a worker wrote when the broker refused its big `unknown` and `message.text`
    records (MessageSizeTooLarge, not retriable): a real refusal, no fault injected."""

    topics: Topics
    dlq: list[ConsumerRecord]
    routed: list[ConsumerRecord]
    went_on: bool  # the worker was still running once it had written all of that
    # After those: BIG_TEXT sent again while `message.text` still refuses it (the dead
    # letters then), and once more after the topic takes it again (the routed records).
    resent_dlq: list[ConsumerRecord]
    redriven: list[ConsumerRecord]

    def dead_letter(self, agent: str) -> ConsumerRecord:
        """The one dead letter `agent` sent."""
        sent = [r for r in self.dlq if header(r, names.FAILED_AGENT) == agent]
        assert len(sent) == 1, [r.headers for r in self.dlq]
        return sent[0]


async def set_topic_limit(bootstrap: str, topics: list[str], limit_bytes: int) -> None:
    """Change the `max.message.bytes` of running topics (a dynamic topic setting), and wait
    until the broker reports it: it applies the change asynchronously."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([
            ConfigResource(ConfigResourceType.TOPIC, name, configs={TOPIC_LIMIT: str(limit_bytes)})
            for name in topics
        ])
    finally:
        await admin.close()
    kafka = KafkaSettings(bootstrap=bootstrap)
    for name in topics:
        for _ in range(300):
            if (await topic_configs(kafka, name)).get(TOPIC_LIMIT) == str(limit_bytes):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{name} does not report {TOPIC_LIMIT}={limit_bytes}")


@pytest.fixture(scope="session")
def refused_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> RefusedRun:
    """The router's output to `unknown` and dedup's to `message.text` are refused; the
    status is not. The worker is stopped and its topics deleted before the tests look.

    The worker checks its topics' sizes at start only: they shrink once it runs."""
    topics = Topics(f"t{uuid.uuid4().hex[:10]}")
    cluster = WorkerCluster(kafka_bootstrap, topics.prefix, tmp_path_factory.mktemp("refused"))
    try:
        worker = cluster.start()
        asyncio.run(set_topic_limit(kafka_bootstrap,
                                    [topics.unknown, topics.event("message.text")],
                                    SMALL_TOPIC_BYTES))
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [BIG_UNKNOWN, BIG_TEXT, SMALL_STATUS]))
        dlq = read(kafka_bootstrap, rf"^{topics.prefix}\.dlq$", 2)
        routed = read(kafka_bootstrap, rf"^{topics.prefix}\.status\..*", 1)
        went_on = worker.process.poll() is None
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [BIG_TEXT]))
        resent_dlq = read(kafka_bootstrap, rf"^{topics.prefix}\.dlq$", 3)
        asyncio.run(set_topic_limit(kafka_bootstrap, [topics.event("message.text")],
                                    DEFAULT_LIMIT_BYTES))
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [BIG_TEXT]))
        redriven = read(kafka_bootstrap, rf"^{topics.prefix}\.message\.text$", 1)
    finally:
        cluster.stop_all()
    return RefusedRun(topics, dlq, routed, went_on, resent_dlq, redriven)


@dataclass
class LiveWorker:
    """One worker at the default limits, running for the whole session, and a reader that
    sends it bodies and returns each one's outcome (`_outcomes.py`)."""

    topics: Topics
    worker: WorkerProcess
    reader: OutcomeReader

    def send(self, bodies: list[bytes]) -> list[Outcome]:
        return self.reader.send(bodies)

    def followed_by_a_normal_text(self, bodies: list[bytes]) -> list[Outcome]:
        """The outcomes of `bodies`, after checking that a text sent after them was routed
        and the worker still runs."""
        *outcomes, normal = self.send([*bodies, text_body(f"wamid.N{uuid.uuid4().hex}", "hi")])
        assert normal.topics() == {self.topics.event("message.text")}, normal.records
        assert self.worker.process.poll() is None, self.worker.log.read_text()[-3000:]
        return outcomes


@pytest.fixture(scope="session")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveWorker]:
    topics = Topics(f"t{uuid.uuid4().hex[:10]}")
    cluster = WorkerCluster(kafka_bootstrap, topics.prefix, tmp_path_factory.mktemp("live"))
    reader = OutcomeReader(kafka_bootstrap, topics)
    try:
        yield LiveWorker(topics, cluster.start(), reader)
    finally:
        try:
            reader.close()
        finally:
            cluster.stop_all()
