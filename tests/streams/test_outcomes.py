"""The worker's one rule, as a property over a real worker at the default limits: every raw
record ends in exactly one outcome (its events, `unknown` or `dlq`), the one `parse_raw`
and the size budget say, whatever its bytes up to the body limit; and a normal text sent
next is routed.

The worker runs once per session (the `live` fixture) and each example sends a few bodies
through it, so the test stays within a minute or two.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.budget import WorkerBudget
from streams.events import Event
from streams.parsers import Parsed, Unrecognised, parse_raw
from streams.settings import StreamsSettings
from tests.streams._outcomes import Outcome
from tests.streams._worker import header, raw_record
from tests.streams.conftest import LiveWorker
from tests.streams.fixtures.strategies import hostile_bodies

BUDGET = WorkerBudget.from_settings(StreamsSettings())


def expected_kind(body: bytes) -> tuple[str, set[str]]:
    """The outcome the worker must give `body`, and the event ids it must route."""
    outcome = parse_raw(raw_record(body))
    if isinstance(outcome, Parsed):
        if any(len(event.to_json()) > BUDGET.event_value_bytes for event in outcome.events):
            return "dlq", set()
        return "events", {event.event_id for event in outcome.events}
    return ("unknown" if isinstance(outcome, Unrecognised) else "dlq"), set()


def check(live: LiveWorker, outcome: Outcome) -> None:
    kind, event_ids = expected_kind(outcome.record.body)
    assert outcome.kind(live.topics) == kind, (kind, [(r.topic, r.headers)
                                                      for r in outcome.records])
    for record in outcome.records:
        if kind == "events":
            event = Event.from_json(record.value)  # every consumer can read it back
            assert event.event_id in event_ids
            assert record.topic == live.topics.event(event.type)
        elif kind == "unknown":
            assert record.value == outcome.record.body
            assert header(record, "qikflow-reason")
        else:
            assert len(record.value or b"") <= BUDGET.dead_letter_bytes
            assert header(record, "qikflow-source-topic") == live.topics.raw
    if kind == "events":
        assert {Event.from_json(r.value).event_id for r in outcome.records} == event_ids


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(hostile_bodies(BUDGET.max_body_bytes), min_size=1, max_size=3))
def test_every_record_ends_in_exactly_one_outcome_and_the_next_is_routed(
    live: LiveWorker, bodies: list[bytes]
) -> None:
    for outcome in live.followed_by_a_normal_text(bodies):
        check(live, outcome)
