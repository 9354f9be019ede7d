"""Every topic and consumer group qikflow uses, named once for one prefix.

The ingest writes `raw`, the streams worker reads it and writes the rest, the sinks read
the per-type topics; each of them takes the names from here, so a prefix (one per
environment or tenant sharing a cluster) changes all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from qikflow.config import KafkaSettings


@dataclass(frozen=True, slots=True)
class Topics:
    """Full topic and group names for one prefix (`qikchat` unless QIKFLOW_TOPIC_PREFIX says
    otherwise)."""

    prefix: str

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> Topics:
        return cls(kafka.topic_prefix)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    # -- topics ----------------------------------------------------------------

    @property
    def raw(self) -> str:
        """Webhook bodies as the ingest received them, byte for byte."""
        return self.name("raw")

    @property
    def keyed(self) -> str:
        """Internal: parsed events keyed by `Event.key`, so copies of one id meet in one
        partition for dedup. Not part of the published contract."""
        return self.name("streams.keyed")

    @property
    def unknown(self) -> str:
        """Raw bodies no parser recognised, unchanged."""
        return self.name("unknown")

    @property
    def dlq(self) -> str:
        """Records a stream agent could not handle or deliver."""
        return self.name("dlq")

    @property
    def optout(self) -> str:
        return self.name("contact.optout")

    @property
    def message_state(self) -> str:
        """Compacted: the current state of every outbound message, keyed by message id."""
        return self.name("message.state")

    @property
    def contact_window(self) -> str:
        """Compacted: the 24-hour window of every contact, keyed by `<account>:<contact>`."""
        return self.name("contact.window")

    @property
    def sink_dlq(self) -> str:
        """Records a sink could not decode or store."""
        return self.name("sink.dlq")

    def event(self, event_type: str) -> str:
        """The topic of an event type: `event("message.text")` is `qikchat.message.text`."""
        return self.name(event_type)

    @property
    def events_pattern(self) -> str:
        """A regular expression for every per-type topic (`message.<type>`,
        `status.<status>`) and nothing else: not `message.state`, which holds the states of
        outbound messages, nor `message.echo`, which holds messages the business sent (as
        notices: `streams/notices.py`), not incoming messages."""
        return rf"^{re.escape(self.prefix)}\.(message\.(?!state$|echo$)|status\.)[a-z0-9_]+$"

    def events(self, event_types: Iterable[str]) -> list[str]:
        """The per-type topics of `event_types` (`<prefix>.message.*`, `<prefix>.status.*`)."""
        return [self.event(event_type) for event_type in event_types]

    # -- consumer groups ---------------------------------------------------------

    @property
    def router_group(self) -> str:
        """The group in which the routers of one prefix share `<prefix>.raw`."""
        return f"{self.prefix}-router"

    @property
    def streams_group(self) -> str:
        """The Faust app id, and so the consumer group of dedup and the agents."""
        return f"{self.prefix}-streams"

    def sink_group(self, sink: str) -> str:
        """The group of one sink (`postgres`, `lake`): each sink reads every event once."""
        return f"{self.prefix}-sink-{sink}"

    def groups(self, sinks: Iterable[str]) -> list[str]:
        """Every group of a pipeline whose sinks are `sinks`, in pipeline order."""
        return [self.router_group, self.streams_group, *(self.sink_group(s) for s in sinks)]
