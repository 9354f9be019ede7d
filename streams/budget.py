"""The size budget of the streams worker: the largest record each stage writes, derived
from QIKFLOW_MAX_BODY_BYTES, and the topic and producer sizes that hold them.

With B the largest body the ingest accepts:

- an event is at most 2 B + EVENT_OVERHEAD_BYTES of JSON: its `content` repeats what it
  takes from the provider's object, which `raw` carries unchanged, and the fixed fields,
  ids (at most MAX_ID_BYTES each) and timestamps fit in the overhead. The router checks
  each event against this before it sends it (`router.py`);
- a keyed record is a bundle of at most QIKFLOW_STREAMS_KEYED_BUNDLE_MAX_BYTES, or one
  event alone with its id, type, key and ingest headers;
- an `unknown` record is the raw body with the ingest headers and a capped reason;
- a dead letter is the largest of those (or a raw record) with the capped dead-letter
  headers; a record beyond the budget is dead-lettered as a bounded preview
  (`dead_letters.py`);
- a changelog record of the dedup table is a key of at most TABLE_KEY_BYTES (longer event
  ids are hashed, `dedup.py`) and a value of at most TABLE_VALUE_BYTES;
- a state (`message.state`, `contact.window`, and their tables' changelog records) is at
  most STATE_VALUE_BYTES, keyed by at most MAX_ID_BYTES: it holds ids (MAX_ID_BYTES each),
  the account and contact (capped by the ingest), times, and texts cut to
  `outbound_state.TEXT_CHARS` characters.

Each topic must take batches of its largest record or of a full producer batch, whichever
is larger; the worker creates its topics so and refuses to start when an existing one is
smaller (`topics.py`). The worker only reads `<prefix>.raw`, but creates it when missing,
with the limit the ingest computes (`ingest.record.batch_bytes` and the ingest's producer
batch), so that whichever of the two creates it, the other takes it as it is.
docs/topics.md has the figures at the default limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.record import FIELD_CAPS_BYTES, batch_bytes
from qikflow.size_budget import TopicNeed, record_batch_bytes, topic_limit_bytes
from streams import headers as names
from streams._keyed import MAGIC, entry_bytes
from streams.dead_letters import largest_preview_bytes
from streams.events import MAX_ID_BYTES, event_types
from streams.notices import NOTICE_TYPES

if TYPE_CHECKING:
    from qikflow.topics import Topics
    from streams.settings import StreamsSettings

EVENT_OVERHEAD_BYTES = 64 * 1024
TABLE_KEY_BYTES = 255
TABLE_VALUE_BYTES = 64
STATE_VALUE_BYTES = 16 * 1024
EVENT_TYPE_BYTES = max(len(event_type) for event_type in [*event_types(), *NOTICE_TYPES])

SETTING = "QIKFLOW_MAX_BODY_BYTES"
PRODUCER_SETTING = "QIKFLOW_STREAMS_PRODUCER_MAX_BATCH_BYTES"


def ingest_headers() -> list[tuple[str, int]]:
    """The headers of a raw record at their caps, as every output of it carries them."""
    return list(FIELD_CAPS_BYTES.items())


def event_headers() -> list[tuple[str, int]]:
    """The headers of a per-type record: the ingest's, the event id and the event type."""
    return [*ingest_headers(), (names.EVENT_ID, MAX_ID_BYTES), (names.EVENT_TYPE,
                                                                 EVENT_TYPE_BYTES)]


@dataclass(frozen=True, slots=True)
class RecordShape:
    """The largest record of one kind: value and key sizes, header value sizes."""

    value_bytes: int
    key_bytes: int = 0
    headers: tuple[tuple[str, int], ...] = ()

    @property
    def batch_bytes(self) -> int:
        """As a one-record batch, the size producers and topics check."""
        return record_batch_bytes(self.value_bytes, key_bytes=self.key_bytes,
                                  headers=self.headers)

    @property
    def dead_letter_bytes(self) -> int:
        """Its dead letter: the record with the dead-letter headers added."""
        return record_batch_bytes(self.value_bytes, key_bytes=self.key_bytes,
                                  headers=[*self.headers, *names.DEAD_LETTER_HEADER_BYTES])


@dataclass(frozen=True, slots=True)
class WorkerBudget:
    """The record, topic and request sizes of one worker configuration."""

    max_body_bytes: int
    keyed_bundle_max_bytes: int
    producer_batch_bytes: int
    ingest_producer_batch_bytes: int

    @classmethod
    def from_settings(cls, settings: StreamsSettings) -> WorkerBudget:
        return cls(settings.max_body_bytes, settings.keyed_bundle_max_bytes,
                   settings.producer_max_batch_bytes, settings.ingest_producer_batch_bytes)

    # -- records ------------------------------------------------------------

    @property
    def event_value_bytes(self) -> int:
        """The largest event JSON the router sends on; a larger one is dead-lettered."""
        return 2 * self.max_body_bytes + EVENT_OVERHEAD_BYTES

    @property
    def raw(self) -> RecordShape:
        """A raw record as the ingest writes it: a body at the limit with its headers."""
        return RecordShape(self.max_body_bytes, headers=tuple(ingest_headers()))

    @property
    def event(self) -> RecordShape:
        """A per-type record: the event, keyed by its contact or message id, with headers."""
        return RecordShape(self.event_value_bytes, MAX_ID_BYTES, tuple(event_headers()))

    @property
    def keyed(self) -> RecordShape:
        """A keyed record: a full bundle, or one event of the largest size alone."""
        alone = len(MAGIC) + entry_bytes(MAX_ID_BYTES, EVENT_TYPE_BYTES, MAX_ID_BYTES,
                                         self.event_value_bytes, ingest_headers())
        return RecordShape(max(alone, self.keyed_bundle_max_bytes))

    @property
    def unknown(self) -> RecordShape:
        """A body no parser recognised, with its ingest headers and the reason."""
        return RecordShape(self.max_body_bytes, headers=(
            *ingest_headers(), (names.REASON, names.MAX_ERROR_BYTES)))

    @property
    def changelog(self) -> RecordShape:
        """A record of the dedup table's changelog."""
        return RecordShape(TABLE_VALUE_BYTES, TABLE_KEY_BYTES)

    @property
    def state(self) -> RecordShape:
        """A state record or a changelog record of a state table, with its headers."""
        return RecordShape(STATE_VALUE_BYTES, MAX_ID_BYTES, (
            (names.EVENT_ID, MAX_ID_BYTES), (names.EVENT_TYPE, EVENT_TYPE_BYTES)))

    @property
    def state_limit_bytes(self) -> int:
        """The `max.message.bytes` of a state table's changelog."""
        return self.limit(self.state.batch_bytes)

    @property
    def dead_letter_bytes(self) -> int:
        """The largest dead letter: of a raw record, an event or a whole keyed record, or
        a preview of a record beyond the budget."""
        return max(self.raw.dead_letter_bytes, self.event.dead_letter_bytes,
                   self.keyed.dead_letter_bytes, largest_preview_bytes())

    # -- producers ----------------------------------------------------------

    @property
    def router_request_bytes(self) -> int:
        """`max_request_size` of the router's producer: keyed, unknown and dead letters."""
        return max(self.keyed.batch_bytes, self.unknown.batch_bytes, self.dead_letter_bytes)

    @property
    def agents_request_bytes(self) -> int:
        """`producer_max_request_size` of the Faust app: events, changelog, dead letters."""
        return max(self.event.batch_bytes, self.changelog.batch_bytes, self.state.batch_bytes,
                   self.dead_letter_bytes)

    # -- topics -------------------------------------------------------------

    def limit(self, record_bytes: int) -> int:
        """The `max.message.bytes` of a topic the worker writes records of this size to."""
        return topic_limit_bytes(record_bytes, self.producer_batch_bytes)

    def needs(self, topics: Topics) -> list[TopicNeed]:
        """What each topic the worker writes must take, in the order of `output_topics`
        after the keyed topic (the changelog is Faust's: see `changelog_limit_bytes`)."""
        body = f"a body of {SETTING}={self.max_body_bytes}"
        events = self._need(self.event.batch_bytes, f"events of {body}")
        return [
            self._need(self.keyed.batch_bytes, f"keyed records of {body}")(topics.keyed),
            *(events(name) for name in topics.events([*event_types(), *NOTICE_TYPES])),
            self._need(self.unknown.batch_bytes, body)(topics.unknown),
            self._need(self.dead_letter_bytes, f"dead letters of {body} and of its events"
                       )(topics.dlq),
            events(topics.optout),
            *(self._need(self.state.batch_bytes, "a state record")(name)
              for name in (topics.message_state, topics.contact_window)),
        ]

    def _need(self, record_bytes: int, why: str) -> Callable[[str], TopicNeed]:
        """A topic's need for records of `record_bytes`, or for a full producer batch."""
        if record_bytes >= self.producer_batch_bytes:
            limit, setting = record_bytes, SETTING
        else:
            limit, setting = self.producer_batch_bytes, PRODUCER_SETTING
            why = f"a producer batch of {setting}={limit}"
        return lambda topic: TopicNeed(topic, limit, why, setting)

    @property
    def raw_limit_bytes(self) -> int:
        """The `max.message.bytes` of `<prefix>.raw`, computed as the ingest computes it
        (`ingest/raw_topic.py`): a body at the limit with its headers, or a full batch of
        the ingest's producer. The worker only reads raw, but creates it when missing."""
        return topic_limit_bytes(batch_bytes(self.max_body_bytes),
                                 self.ingest_producer_batch_bytes)

    @property
    def changelog_limit_bytes(self) -> int:
        return self.limit(self.changelog.batch_bytes)
