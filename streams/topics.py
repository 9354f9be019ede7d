"""Every topic the streams read or write, and the record headers they add: named once here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qikflow.config import KafkaSettings
from streams.events import event_types

# Headers the streams add. The ingest headers (`ingest.record`) travel unchanged.
EVENT_ID = "qikflow-event-id"
EVENT_TYPE = "qikflow-event-type"
ERROR = "qikflow-error"
REASON = "qikflow-reason"
FAILED_AGENT = "qikflow-failed-agent"
SOURCE_TOPIC = "qikflow-source-topic"
SOURCE_PARTITION = "qikflow-source-partition"
SOURCE_OFFSET = "qikflow-source-offset"

# The routing agents' names, as they appear in FAILED_AGENT.
ROUTER = "router"
DEDUP = "dedup"


@dataclass(frozen=True, slots=True)
class Topics:
    """Full topic names for one prefix (`qikchat` unless QIKFLOW_TOPIC_PREFIX says otherwise)."""

    prefix: str

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> Topics:
        return cls(kafka.topic_prefix)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    @property
    def router_group(self) -> str:
        """The consumer group in which the routers of one prefix share `<prefix>.raw`."""
        return f"{self.prefix}-router"

    @property
    def streams_group(self) -> str:
        """The Faust app id, and so the consumer group of dedup and the agents."""
        return f"{self.prefix}-streams"

    @property
    def raw(self) -> str:
        """Webhook bodies as ingest received them (written by ingest)."""
        return self.name("raw")

    @property
    def keyed(self) -> str:
        """Internal: parsed events keyed by `Event.key`, so copies of one id meet in one
        partition for dedup. Not part of the published contract."""
        return self.name("streams.keyed")

    @property
    def unknown(self) -> str:
        return self.name("unknown")

    @property
    def dlq(self) -> str:
        return self.name("dlq")

    @property
    def optout(self) -> str:
        return self.name("contact.optout")

    def event(self, event_type: str) -> str:
        """The topic of an event type: `event("message.text")` is `qikchat.message.text`."""
        return self.name(event_type)

    def events(self) -> list[str]:
        """Every per-type topic (`<prefix>.message.*` and `<prefix>.status.*`)."""
        return [self.event(event_type) for event_type in event_types()]

    def outputs(self) -> list[str]:
        """Every published topic the worker writes."""
        return [*self.events(), self.unknown, self.dlq, self.optout]

    def pattern(self, kind: str) -> str:
        """A subscription pattern for a kind: `pattern("status")` is `^qikchat\\.status\\..*`."""
        return rf"^{re.escape(self.prefix)}\.{kind}\..*"
