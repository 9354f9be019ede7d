"""`<prefix>.message.state`: the current state of every outbound message.

Every status callback dedup routes (`status.sent`, `.delivered`, `.read`, `.failed`,
`.played`; they are keyed by message id) is merged into a Faust table keyed by message id
with the rules of `streams/outbound_state.py`, the same the PostgreSQL sink applies to
`outbound_messages`.
A callback that changes the state publishes the merged state; a resent or late one that
changes nothing publishes nothing. See `streams/_state_table.py` for how dedup folds it,
how a restart recovers the table and why a published state never goes backwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams._state_table import StateFold, StateTopic, merging, register_state
from streams.outbound_state import STATUS_BITS, OutboundState

if TYPE_CHECKING:
    from streams.context import StreamsApp

NAME = "message-state"
EVENT_TYPES = [f"status.{status}" for status in (*STATUS_BITS, "played")]


# The state after a callback, or None when it changes nothing (an `unknown` status, a
# resent or late callback).
fold = merging(OutboundState.of_facts, OutboundState.merge)

FOLD: StateFold[OutboundState] = StateFold(
    key=lambda event: event.message_id.encode(),
    fold=fold,
    encode=OutboundState.to_json,
    decode=OutboundState.from_json,
    record_type="message.state",
)


def register(streams: StreamsApp) -> None:
    register_state(streams, name=NAME, event_types=EVENT_TYPES, fold=FOLD,
                   topic=StateTopic(streams.topics.message_state,
                                    streams.settings.state_retention_s))
