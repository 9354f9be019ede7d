"""parse_raw (`streams/parsers/__init__.py`): format dispatch, and properties over any bytes
and any JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.record import RawRecord
from streams.events import MAX_ID_BYTES, Event
from streams.notices import NoticeEvent
from streams.parsers import (
    MAX_NESTING,
    Outcome,
    Parsed,
    Undecodable,
    Unrecognised,
    parse_raw,
)
from tests.streams.fixtures import names, parse
from tests.streams.fixtures.strategies import json_values, mutated_fixtures, webhook_bodies


def _record(body: bytes, received_at_ms: int = 1_763_643_200_000) -> RawRecord:
    return RawRecord(body=body, receipt_id="r-1", received_at_ms=received_at_ms, account="a")


def _check(outcome: Outcome) -> None:
    """Exactly one outcome; parsed events are valid and survive the wire format."""
    assert isinstance(outcome, Parsed | Unrecognised | Undecodable)
    if isinstance(outcome, Parsed):
        assert outcome.events or outcome.notices
        for event in outcome.events:
            assert Event.model_validate(event.model_dump()) == event
            assert Event.from_json(event.to_json()) == event
            assert event.received_at.utcoffset() is not None
        for notice in outcome.notices:
            assert NoticeEvent.from_json(notice.to_json()) == notice
            assert notice.received_at.utcoffset() is not None
    if isinstance(outcome, Undecodable):
        # A parser error would say so; on bodies it must never happen.
        assert not outcome.error.startswith("parser error")


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (b"", Undecodable),
        (b"not json", Undecodable),
        (b"\xff\xfe", Undecodable),
        (b"[1, 2]", Undecodable),
        (b'"a string"', Undecodable),
        (b"null", Undecodable),
        (b"{}", Unrecognised),
        (b'{"object": "page", "entry": []}', Unrecognised),
        (b'{"message": "hello"}', Unrecognised),
        (b'{"message": {"event": "whatsapp:message:in"}}', Unrecognised),
    ],
)
def test_dispatch_of_odd_bodies(body: bytes, outcome: type[Outcome]) -> None:
    assert isinstance(parse_raw(_record(body)), outcome)


def test_undecodable_says_why() -> None:
    outcome = parse_raw(_record(b"[]"))
    assert outcome == Undecodable("JSON list, not an object")


def test_every_fixture_ends_in_one_valid_outcome() -> None:
    outcomes = {name: parse(name) for name in names()}
    for outcome in outcomes.values():
        _check(outcome)
    parsed = [name for name, outcome in outcomes.items() if isinstance(outcome, Parsed)]
    assert len(parsed) == 58
    assert not any(isinstance(outcome, Undecodable) for outcome in outcomes.values())


def test_received_at_falls_back_to_now_when_the_record_has_none() -> None:
    body = b'{"event": "whatsapp:message:in", "payload": {"id": "x", "message": {}}}'
    outcome = parse_raw(_record(body, received_at_ms=0))
    assert isinstance(outcome, Parsed)
    assert outcome.events[0].received_at.year >= 2025


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_never_raise(body: bytes) -> None:
    _check(parse_raw(_record(body)))


@settings(max_examples=300)
@given(json_values)
def test_any_json_value_never_raises(value: Any) -> None:
    outcome = parse_raw(_record(orjson.dumps(value)))
    _check(outcome)
    if not isinstance(value, dict):
        assert isinstance(outcome, Undecodable)


@settings(max_examples=500)
@given(webhook_bodies, st.integers(-(2**63), 2**63 - 1))
def test_webhook_shaped_bodies_parse_or_say_why(body: dict[str, Any], received_at_ms: int) -> None:
    outcome = parse_raw(_record(orjson.dumps(body), received_at_ms))
    _check(outcome)
    assert not isinstance(outcome, Undecodable)


@settings(max_examples=500)
@given(mutated_fixtures())
def test_damaged_fixtures_parse_or_say_why(body: Any) -> None:
    outcome = parse_raw(_record(orjson.dumps(body)))
    _check(outcome)
    assert isinstance(outcome, Undecodable) == (not isinstance(body, dict))


def test_reasons_quote_provider_values_briefly() -> None:
    outcome = parse_raw(_record(orjson.dumps({"event": "x" * 10_000})))
    assert isinstance(outcome, Unrecognised)
    assert outcome.reason.startswith("qikchat: unknown event 'xxx")
    assert len(outcome.reason) < 120


def _text_with_extra(extra: Any, message_id: str = "wamid.X1") -> bytes:
    """A Qikchat text whose message object carries `extra`, kept in the event's `raw`."""
    return orjson.dumps({"event": "whatsapp:message:in", "payload": {"message": {
        "id": message_id, "type": "text", "text": {"body": "hi"}, "extra": extra}}})


def _nested_list(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = [value]
    return value


def test_bodies_nested_up_to_the_limit_parse_into_events_consumers_read_back() -> None:
    # The text message sits at level 3 (body, payload, message); `extra` adds the rest.
    outcome = parse_raw(_record(_text_with_extra(_nested_list(MAX_NESTING - 3))))
    assert isinstance(outcome, Parsed)
    (event,) = outcome.events
    assert Event.from_json(event.to_json()) == event


@pytest.mark.parametrize("levels", [MAX_NESTING - 2, 230])
def test_bodies_nested_deeper_go_to_unknown_with_the_reason(levels: int) -> None:
    outcome = parse_raw(_record(_text_with_extra(_nested_list(levels))))
    assert outcome == Unrecognised(f"JSON nested deeper than {MAX_NESTING} levels")


def test_a_message_id_longer_than_the_limit_is_no_event() -> None:
    outcome = parse_raw(_record(_text_with_extra(None, message_id="w" * (MAX_ID_BYTES + 1))))
    assert isinstance(outcome, Unrecognised)
    assert f"longer than {MAX_ID_BYTES} bytes" in outcome.reason
    at_limit = parse_raw(_record(_text_with_extra(None, message_id="w" * MAX_ID_BYTES)))
    assert isinstance(at_limit, Parsed)
