"""Tests of streams/outbound_state.py: the merge rules are associative, so batches do not
change the state."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.outbound_state import MERGE_RULES, OutboundState

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
)


def test_every_field_but_the_key_has_a_rule() -> None:
    assert set(MERGE_RULES) == {f.name for f in fields(OutboundState)} - {"message_id"}


@given(states, states, states)
def test_merge_is_associative(first: OutboundState, second: OutboundState,
                              third: OutboundState) -> None:
    assert first.merge(second).merge(third) == first.merge(second.merge(third))


@given(states)
def test_a_repeated_callback_changes_nothing(state: OutboundState) -> None:
    assert state.merge(state) == state
