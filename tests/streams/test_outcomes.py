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

from tests.streams._outcomes import BUDGET, check_outcome
from tests.streams.conftest import LiveWorker
from tests.streams.fixtures.strategies import hostile_bodies


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(hostile_bodies(BUDGET.max_body_bytes), min_size=1, max_size=3))
def test_every_record_ends_in_exactly_one_outcome_and_the_next_is_routed(
    live: LiveWorker, bodies: list[bytes]
) -> None:
    for outcome in live.followed_by_a_normal_text(bodies):
        check_outcome(live.topics, outcome)
