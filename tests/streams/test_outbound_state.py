"""Tests of streams/outbound_state.py: the merge rules are associative, so batches do not
change the state."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.events import Event, StatusContent
from streams.outbound_state import MERGE_RULES, TEXT_CHARS, OutboundState
from streams.state_records import MessageStateRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)
times = st.none() | st.integers(0, 100).map(lambda s: T0 + timedelta(seconds=s))
states = st.builds(
    OutboundState,
    message_id=st.just("m1"),
    account=st.sampled_from(["", "acme", "other"]),
    contact=st.none() | st.sampled_from(["", "+91980000001"]),
    status_rank=st.integers(0, 3),
    failed=st.booleans(),
    error_code=st.none() | st.integers(1, 200_000),
    error_title=st.none() | st.sampled_from(["", "Title"]),
    sent_at=times, delivered_at=times, read_at=times, failed_at=times,
    updated_at=st.integers(0, 100).map(lambda s: T0 + timedelta(seconds=s)),
    pricing_category=st.none() | st.sampled_from(["", "utility", "marketing"]),
    statuses=st.integers(0, 15),
    played_at=times,
)


def status_event(status: str, *, at: datetime = T0, received: datetime = T0,
                 error_title: str | None = None) -> Event:
    known = status in ("sent", "delivered", "read", "failed", "played", "deleted")
    return Event(
        event_id=f"m1:{status}", type=f"status.{status if known else 'unknown'}",
        kind="status", format="meta", receipt_ids=["r"], received_at=received,
        occurred_at=at, source="qikchat", account="acme", business_number=None,
        contact_number="+919800000001", contact_name=None, message_id="m1",
        content=StatusContent(status=status if known else "unknown",
                              original_status=None if known else status,
                              error_title=error_title),
        raw={})


def test_every_field_but_the_key_has_a_rule() -> None:
    assert set(MERGE_RULES) == {f.name for f in fields(OutboundState)} - {"message_id"}


@given(states, states, states)
def test_merge_is_associative(first: OutboundState, second: OutboundState,
                              third: OutboundState) -> None:
    assert first.merge(second).merge(third) == first.merge(second.merge(third))


@given(states)
def test_a_repeated_callback_changes_nothing(state: OutboundState) -> None:
    assert state.merge(state) == state


def test_a_callback_from_the_future_takes_its_receipt_time() -> None:
    """A provider time past the receipt (plus clock skew) does not move the state: a
    `read` dated next year would otherwise stay the latest update for a year."""
    received = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    future = status_event("read", at=received + timedelta(days=365), received=received)
    skewed = status_event("delivered", at=received + timedelta(minutes=2), received=received)
    state = OutboundState.of_event(future)
    assert state is not None
    assert state.read_at == state.updated_at == received
    skewed_state = OutboundState.of_event(skewed)
    assert skewed_state is not None
    assert skewed_state.delivered_at == received + timedelta(minutes=2)  # within the skew


def test_unknown_statuses_move_no_state_and_text_is_cut() -> None:
    assert OutboundState.of_event(status_event("deleted")) is None
    failed = status_event("failed", error_title="x" * 5000)
    state = OutboundState.of_event(failed)
    assert state is not None and state.error_title == "x" * TEXT_CHARS


def test_played_ranks_with_read_and_is_published_without_new_status_names() -> None:
    played = OutboundState.of_event(status_event("played"))
    assert played is not None
    assert (played.status, played.status_rank, played.statuses) == ("read", 3, 0)
    assert played.played_at is not None and played.read_at is None
    record = MessageStateRecord.model_validate(played.to_record())
    assert (record.status, record.statuses_seen, record.played_at) == (
        "read", [], played.played_at)
    assert OutboundState.from_json(played.to_json()) == played


def test_a_state_published_before_played_was_known_still_reads() -> None:
    sent = OutboundState.of_event(status_event("sent"))
    assert sent is not None
    record = orjson.loads(sent.to_json())
    del record["played_at"]
    assert OutboundState.from_json(orjson.dumps(record)) == sent
