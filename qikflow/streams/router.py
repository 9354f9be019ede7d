"""Stage 1 of routing: parse `<prefix>.raw` and re-key every event for dedup.

The raw topic has no useful key (ingest never parses), so copies of one event can sit in
different raw partitions, read by different workers. This agent is stateless: it parses
each body and sends every event to the internal keyed topic under `Event.key`, which is
the same for every copy of one event id, so stage 2 (`dedup.py`) sees all copies of an id
in one partition. Bodies that are no event go straight to `<prefix>.unknown` or `.dlq`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from qikflow.ingest.record import RawRecord
from qikflow.streams import topics as names
from qikflow.streams._output import Delivery, Output, headers_of
from qikflow.streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw

if TYPE_CHECKING:
    from faust.types import Message

    from qikflow.streams.app import StreamsApp

logger = logging.getLogger(__name__)


class Router:
    """Sends each outcome of `parse_raw` to its topic."""

    def __init__(self, streams: StreamsApp) -> None:
        self._topics = streams.topics
        self._metrics = streams.metrics
        self.output = Output(streams, names.ROUTER)

    async def route(self, message: Message) -> None:
        """Route one raw record; an exception dead-letters the record instead of escaping."""
        self._metrics.raw.inc()
        delivery = self.output.start(message)
        try:
            await self._route(delivery)
        except Exception as exc:  # noqa: BLE001 - any failure dead-letters this record only
            await self.output.fail(delivery, exc)
        finally:
            delivery.close()

    async def _route(self, delivery: Delivery) -> None:
        message = delivery.source
        headers = headers_of(message)
        outcome = parse_raw(RawRecord.from_kafka(message.value, headers))
        if isinstance(outcome, Parsed):
            for event in outcome.events:
                event_headers = [
                    *headers,
                    (names.EVENT_ID, event.event_id.encode()),
                    (names.EVENT_TYPE, event.type.encode()),
                ]
                await self.output.send(
                    delivery, self._topics.keyed, event.key, event.to_json(), event_headers
                )
        elif isinstance(outcome, Unrecognised):
            self._metrics.unknown.inc()
            reason = (names.REASON, outcome.reason.encode("utf-8", "replace"))
            await self.output.send(
                delivery, self._topics.unknown, message.key, message.value, [*headers, reason]
            )
        elif isinstance(outcome, Undecodable):
            await self.output.dead_letter(delivery, outcome.error)


def register(streams: StreamsApp) -> None:
    """Declare the raw topic and the routing agent on the app."""
    app = streams.app
    settings = streams.settings
    # Raw serializers: the body reaches parse_raw as bytes, whatever it holds.
    raw = app.topic(streams.topics.raw, key_serializer="raw", value_serializer="raw")
    router = Router(streams)

    async def route(stream: Any) -> None:
        batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)
        async for events in batches:
            for event in events:
                await router.route(event.message)

    app.agent(raw, name=names.ROUTER)(route)
