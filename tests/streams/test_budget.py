"""The size budget (`streams/budget.py`): figures at the default body limit, real records
within them, and a real worker at the default limits routing or dead-lettering records at
and beyond them, then routing what comes next."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from ingest.record import FIELD_CAPS_BYTES
from qikflow.topics import Topics
from streams import headers as names
from streams._keyed import MAGIC, encode_entry
from streams.budget import EVENT_OVERHEAD_BYTES, WorkerBudget
from streams.dead_letters import PREVIEW_BYTES
from streams.events import Event
from streams.headers import header
from streams.parsers import Parsed, parse_raw
from streams.settings import StreamsSettings
from tests.streams._worker import raw_record, text_body
from tests.streams.conftest import LiveWorker, set_topic_limit

BUDGET = WorkerBudget.from_settings(StreamsSettings())
BUDGET_TOPICS = Topics("acme")
MIB = 1024 * 1024
CAPPED_HEADERS = [(name, b"h" * size) for name, size in FIELD_CAPS_BYTES.items()]


def text_of_size(body_bytes: int, message_id: str = "wamid.SIZE") -> bytes:
    """A Qikchat text body of exactly `body_bytes`."""
    body = text_body(message_id, "")
    return text_body(message_id, "t" * (body_bytes - len(body)))


def meta_body(messages: list[dict[str, object]], contact_name: str = "Asha") -> bytes:
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{
        "value": {"metadata": {"display_phone_number": "918041234567"},
                  "contacts": [{"wa_id": "919811111111", "profile": {"name": contact_name}}],
                  "messages": messages}}]}]})


def meta_text(message_id: str, text: str, **extra: object) -> dict[str, object]:
    return {"from": "919811111111", "id": message_id, "timestamp": "1763643146",
            "type": "text", "text": {"body": text}, **extra}


def record_bytes(event: Event, headers: list[tuple[str, bytes]]) -> int:
    full = [*headers, (names.EVENT_ID, event.event_id.encode()),
            (names.EVENT_TYPE, event.type.encode())]
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(event.key, event.to_json(), full))


# -- the figures --------------------------------------------------------------


def test_the_default_budget() -> None:
    assert BUDGET.max_body_bytes == MIB
    assert BUDGET.event_value_bytes == 2 * MIB + EVENT_OVERHEAD_BYTES
    assert BUDGET.event.batch_bytes > BUDGET.event_value_bytes
    assert BUDGET.dead_letter_bytes > max(BUDGET.event.batch_bytes, BUDGET.keyed.batch_bytes,
                                          BUDGET.raw.batch_bytes)
    assert BUDGET.router_request_bytes >= max(BUDGET.keyed.batch_bytes,
                                              BUDGET.unknown.batch_bytes)
    assert BUDGET.agents_request_bytes >= BUDGET.event.batch_bytes
    # Below the producer's batch, a topic must still take a full batch.
    assert BUDGET.changelog_limit_bytes == StreamsSettings().producer_max_batch_bytes


def test_the_event_of_a_body_at_the_limit_fits_its_record_bundle_and_dead_letter() -> None:
    for body in (text_of_size(MIB), meta_body([meta_text("wamid.M1", "m" * (MIB // 2))],
                                               contact_name="n" * (MIB // 2 - 400))):
        assert len(body) <= MIB
        outcome = parse_raw(raw_record(body))
        assert isinstance(outcome, Parsed)
        (event,) = outcome.events
        assert len(event.to_json()) <= BUDGET.event_value_bytes
        assert record_bytes(event, CAPPED_HEADERS) <= BUDGET.event.batch_bytes
        entry = encode_entry(event.event_id, event.type, event.key, event.to_json(),
                             CAPPED_HEADERS)
        keyed = DefaultRecordBatchBuilder.estimate_size_in_bytes(
            None, MAGIC + b"".join(entry.parts), [])
        assert keyed <= BUDGET.keyed.batch_bytes


def test_a_smaller_body_limit_makes_smaller_topics() -> None:
    small = WorkerBudget.from_settings(StreamsSettings(max_body_bytes=100_000))
    assert small.event.batch_bytes < BUDGET.event.batch_bytes
    needs = {need.topic: need for need in small.needs(BUDGET_TOPICS)}
    # Records this small fit a producer batch: the batch size sets the limit and the setting.
    assert needs["acme.message.text"].limit_bytes == StreamsSettings().producer_max_batch_bytes
    assert needs["acme.message.text"].setting == "QIKFLOW_STREAMS_PRODUCER_MAX_BATCH_BYTES"
    # At the default limits every topic of events is sized by the body limit; the small
    # state records by a producer batch.
    settings = {need.topic: need.setting for need in BUDGET.needs(BUDGET_TOPICS)}
    state_topics = {BUDGET_TOPICS.message_state, BUDGET_TOPICS.contact_window}
    assert {settings.pop(topic) for topic in state_topics} == {
        "QIKFLOW_STREAMS_PRODUCER_MAX_BATCH_BYTES"}
    assert set(settings.values()) == {"QIKFLOW_MAX_BODY_BYTES"}


# -- a real worker at the default limits ----------------------------------------


def test_a_505_kb_text_is_routed_and_so_is_what_follows(live: LiveWorker) -> None:
    (outcome,) = live.followed_by_a_normal_text([text_body("wamid.T505", "x" * 505_000)])
    record = outcome.only(live.topics.event("message.text"))
    # Carried twice (content and raw): the event was over Faust's former 1,000,000 bytes.
    assert len(record.value) > 1_010_000
    assert Event.from_json(record.value).content.body == "x" * 505_000  # type: ignore[union-attr]


def test_a_text_body_at_the_limit_makes_a_2_mib_event_that_is_routed(live: LiveWorker) -> None:
    (outcome,) = live.followed_by_a_normal_text([text_of_size(MIB, "wamid.TMAX")])
    assert len(outcome.only(live.topics.event("message.text")).value) > 2 * MIB - 1000


def test_a_1_mib_body_that_is_not_json_is_dead_lettered_whole(live: LiveWorker) -> None:
    body = b"\x00not json " + b"z" * (MIB - 10)
    assert len(body) == MIB
    (outcome,) = live.followed_by_a_normal_text([body])
    letter = outcome.only(live.topics.dlq)
    assert letter.value == body
    assert header(letter.headers, names.REASON) == names.UNDECODABLE
    assert header(letter.headers, names.TRUNCATED_FROM) == ""  # whole


def test_an_event_beyond_the_budget_dead_letters_its_record_and_nothing_else(
    live: LiveWorker,
) -> None:
    # Floats grow when written back (`1e15` is `1000000000000000.0`): under 1 MiB of body,
    # over 3 MiB of event. The body's other message must not be routed either.
    floats = b"[" + b",".join([b"1e15"] * 200_000) + b"]"
    body = meta_body([meta_text("wamid.FINE", "fine"), meta_text("wamid.HUGE", "huge")])
    body = body.replace(b'"type":"text","text":{"body":"huge"}',
                        b'"type":"text","text":{"body":"huge"},"extra":' + floats)
    assert len(body) <= MIB
    (outcome,) = live.followed_by_a_normal_text([body])
    letter = outcome.only(live.topics.dlq)
    assert outcome.topics() == {live.topics.dlq}
    assert letter.value == body
    assert header(letter.headers, names.REASON) == names.TOO_LARGE
    assert "wamid.HUGE" in (header(letter.headers, names.ERROR) or "")
    assert header(letter.headers, names.SOURCE_TOPIC) == live.topics.raw


def test_a_record_beyond_what_the_dlq_takes_is_dead_lettered_as_a_preview(
    live: LiveWorker,
) -> None:
    # Another producer writes 3 MiB to a raw topic whose limit an operator raised.
    asyncio.run(set_topic_limit(live.reader.bootstrap, [live.topics.raw], 4 * MIB))
    body = b"not json " * (3 * MIB // 9)
    (outcome,) = live.followed_by_a_normal_text([body])
    letter = outcome.only(live.topics.dlq)
    assert letter.value == body[:PREVIEW_BYTES]
    assert header(letter.headers, names.TRUNCATED_FROM) == str(len(body))
    assert header(letter.headers, names.SOURCE_TOPIC) == live.topics.raw
    assert (header(letter.headers, names.SOURCE_PARTITION),
            header(letter.headers, names.SOURCE_OFFSET)) == (str(outcome.raw_partition),
                                                             str(outcome.raw_offset))
    assert header(letter.headers, names.REASON) == names.UNDECODABLE
