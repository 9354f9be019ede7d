"""The checked-in JSON Schemas match the models, every parsed event validates, and so does
every event a real worker publishes, read as another service would read it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.record import RawRecord
from qikflow.topics import Topics
from streams.events import Event, OptOutEvent, event_types
from streams.notices import NOTICE_TYPES, NoticeEvent
from streams.parsers import Parsed, parse_raw
from streams.schemas import all_schemas, write_schemas
from tests.streams._worker import raw_record
from tests.streams.conftest import RoutingRun
from tests.streams.fixtures import names, parse
from tests.streams.fixtures.strategies import mutated_fixtures, webhook_bodies

CHECKED_IN = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_match_the_models(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert {p.name for p in written} == {p.name for p in CHECKED_IN.glob("*.json")}
    for path in written:
        assert path.read_text(encoding="utf-8") == (CHECKED_IN / path.name).read_text(
            encoding="utf-8"), f"{path.name} drifted: run python -m streams.schemas"


def test_one_schema_per_event_type_plus_optout() -> None:
    schemas = all_schemas()
    assert set(schemas) == {f"{t}.schema.json" for t in [*event_types(), *NOTICE_TYPES]} | {
        "contact.optout.schema.json", "message.state.schema.json", "contact.window.schema.json"}
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _schema(event_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (CHECKED_IN / f"{event_type}.schema.json").read_text(encoding="utf-8"))
    return loaded


_VALIDATORS = {t: jsonschema.Draft202012Validator(_schema(t))
               for t in [*event_types(), *NOTICE_TYPES]}


def _validate(event: Event | NoticeEvent) -> None:
    _VALIDATORS[event.type].validate(json.loads(event.to_json()))


def test_every_fixture_event_validates_against_its_schema() -> None:
    parsed = [outcome for outcome in map(parse, names()) if isinstance(outcome, Parsed)]
    events = [event for outcome in parsed for event in outcome.events]
    assert len(events) == 68
    assert {event.type for event in events} == set(event_types())
    for event in events:
        _validate(event)


def test_every_fixture_notice_validates_against_its_schema() -> None:
    parsed = [outcome for outcome in map(parse, names()) if isinstance(outcome, Parsed)]
    notices = [notice for outcome in parsed for notice in outcome.notices]
    assert len(notices) == 19
    assert {notice.type for notice in notices} == set(NOTICE_TYPES)
    for notice in notices:
        _validate(notice)
        with pytest.raises(jsonschema.ValidationError):  # `type` and `content` are pinned
            other = next(t for t in NOTICE_TYPES if t != notice.type)
            _VALIDATORS[other].validate(json.loads(notice.to_json()))


@settings(max_examples=300)
@given(st.one_of(webhook_bodies, mutated_fixtures()))
def test_events_from_any_webhook_body_validate(body: Any) -> None:
    outcome = parse_raw(RawRecord(orjson.dumps(body), "r-1", 1_763_643_200_000))
    if isinstance(outcome, Parsed):
        for event in outcome.events:
            _validate(event)
        for notice in outcome.notices:
            _validate(notice)


def test_schema_pins_type_and_content() -> None:
    text = next(e for e in _events("qikchat-in-text"))
    image = json.loads(next(e for e in _events("qikchat-in-image")).to_json())
    # An image event is not a valid text event: `type` and `content` are pinned.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(image, _schema("message.text"))
    wrong_content = json.loads(text.to_json())
    wrong_content["content"] = image["content"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong_content, _schema("message.text"))


def test_optout_schema_validates_an_optout_event() -> None:
    text = _events("qikchat-in-text-stop")[0]
    optout = OptOutEvent(
        schema_version=1,
        event_id=f"optout:{text.message_id}",
        contact_number=text.contact_number,
        contact_name=text.contact_name,
        account=text.account,
        message_id=text.message_id,
        text="STOP",
        matched="stop",
        occurred_at=text.occurred_at,
        received_at=text.received_at,
        receipt_ids=text.receipt_ids,
    )
    jsonschema.validate(json.loads(optout.to_json()), _schema("contact.optout"))


def _events(name: str) -> list[Event]:
    outcome = parse(name)
    assert isinstance(outcome, Parsed)
    return outcome.events


async def subscribe_and_read(bootstrap: str, pattern: str, expected: int) -> list[ConsumerRecord]:
    """What another service would do: its own group, a pattern, from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"contract-test-{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    consumer.subscribe(pattern=pattern)
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + 90
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def test_every_event_a_worker_publishes_matches_its_schema(
    routing_run: RoutingRun, kafka_bootstrap: str
) -> None:
    prefix = routing_run.topics.prefix
    pattern = Topics(prefix).events_pattern
    records = asyncio.run(
        subscribe_and_read(kafka_bootstrap, pattern, len(routing_run.expected_events))
    )
    assert len(records) >= len(routing_run.expected_events)
    validated = set()
    for record in records:
        event_type = record.topic.removeprefix(f"{prefix}.")
        jsonschema.validate(json.loads(record.value), _schema(event_type))
        validated.add(event_type)
    assert validated == set(routing_run.expected_events.values())


def test_every_notice_a_worker_publishes_is_on_its_topic_and_matches_its_schema(
    routing_run: RoutingRun, kafka_bootstrap: str
) -> None:
    prefix = routing_run.topics.prefix
    expected = {notice.event_id: notice.type for body in routing_run.bodies
                if isinstance(outcome := parse_raw(raw_record(body)), Parsed)
                for notice in outcome.notices}
    assert set(expected.values()) == set(NOTICE_TYPES)
    names = "|".join(re.escape(t) for t in NOTICE_TYPES)
    records = asyncio.run(subscribe_and_read(
        kafka_bootstrap, rf"^{re.escape(prefix)}\.({names})$", len(expected)))
    routed = {}
    for record in records:
        notice_type = record.topic.removeprefix(f"{prefix}.")
        jsonschema.validate(json.loads(record.value), _schema(notice_type))
        notice = NoticeEvent.from_json(record.value)
        assert record.key == notice.key
        routed[notice.event_id] = notice_type
    assert routed == expected


def test_every_optout_a_worker_publishes_matches_its_schema(routing_run: RoutingRun) -> None:
    assert routing_run.optout
    for record in routing_run.optout:
        jsonschema.validate(json.loads(record.value), _schema("contact.optout"))
