"""Stage 1 of routing: parse `<prefix>.raw` and re-key every event for dedup.

The raw topic has no useful key (ingest never parses), so copies of one event can sit in
different raw partitions, read by different workers. This agent is stateless: it parses
each body and sends every event to the internal keyed topic, into the partition of
`Event.key`, which is the same for every copy of one event id, so stage 2 (`dedup.py`) sees
all copies of an id in one partition. The events of one batch bound for one partition
travel as one bundle record (`_keyed.py`), so stage 2 pays Faust's per-record cost once per
bundle. Bodies that are no event go straight to `<prefix>.unknown` or `.dlq`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qikflow.ingest.record import RawRecord
from qikflow.streams import topics as names
from qikflow.streams._keyed import BundleWriter, partition_for
from qikflow.streams._output import Delivery, Output, headers_of
from qikflow.streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw

if TYPE_CHECKING:
    from faust.types import Message

    from qikflow.streams.app import StreamsApp

logger = logging.getLogger(__name__)


class _Bundle:
    """The events of one batch for one keyed partition, and the raw records they came from."""

    __slots__ = ("deliveries", "writer")

    def __init__(self) -> None:
        self.writer = BundleWriter()
        self.deliveries: dict[int, Delivery] = {}  # by id(): a record may add several events


class Router:
    """Sends each outcome of `parse_raw` to its topic; events go out in keyed bundles."""

    def __init__(self, streams: StreamsApp) -> None:
        self._topics = streams.topics
        self._metrics = streams.metrics
        self._partitions = streams.settings.partitions
        self._max_bundle_bytes = streams.settings.keyed_bundle_max_bytes
        self.output = Output(streams, names.ROUTER)

    async def route(self, messages: Sequence[Message]) -> None:
        """Route one batch of raw records; a failure dead-letters its record, not the batch.

        Every raw record is acked only once all the bundles holding its events (and its
        other outputs) are delivered; a bundle the broker refuses dead-letters every raw
        record that had an event in it.
        """
        bundles: dict[int, _Bundle] = {}
        deliveries: list[Delivery] = []
        try:
            for message in messages:
                self._metrics.raw.inc()
                delivery = self.output.start(message)
                deliveries.append(delivery)
                try:
                    await self._route(delivery, bundles)
                except Exception as exc:  # noqa: BLE001 - any failure dead-letters this record
                    await self.output.fail(delivery, exc)
            for partition, bundle in bundles.items():
                await self._send(partition, bundle)
        finally:
            for delivery in deliveries:
                delivery.close()

    async def _route(self, delivery: Delivery, bundles: dict[int, _Bundle]) -> None:
        message = delivery.source
        headers = headers_of(message)
        outcome = parse_raw(RawRecord.from_kafka(message.value, headers))
        if isinstance(outcome, Parsed):
            for event in outcome.events:
                key = event.key
                value = event.to_json()
                partition = partition_for(key, self._partitions)
                bundle = bundles.get(partition)
                if bundle is not None and bundle.writer.size + len(value) > self._max_bundle_bytes:
                    await self._send(partition, bundle)
                    bundle = None
                if bundle is None:
                    bundle = bundles[partition] = _Bundle()
                bundle.writer.add(event.event_id, event.type, key, value, headers)
                bundle.deliveries[id(delivery)] = delivery
        elif isinstance(outcome, Unrecognised):
            self._metrics.unknown.inc()
            reason = (names.REASON, outcome.reason.encode("utf-8", "replace"))
            await self.output.send(
                delivery, self._topics.unknown, message.key, message.value, [*headers, reason]
            )
        elif isinstance(outcome, Undecodable):
            await self.output.dead_letter(delivery, outcome.error)

    async def _send(self, partition: int, bundle: _Bundle) -> None:
        """Queue one bundle; if the producer refuses it, dead-letter the records in it."""
        deliveries = list(bundle.deliveries.values())
        bundle.deliveries.clear()  # sent (or failed) once, even if called again
        if not deliveries:
            return
        try:
            await self.output.send_for(
                deliveries, self._topics.keyed, None, bundle.writer.value(), [], partition
            )
        except Exception as exc:  # noqa: BLE001 - those records go to the DLQ instead
            for delivery in deliveries:
                await self.output.fail(delivery, exc)


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
            await router.route([event.message for event in events])

    app.agent(raw, name=names.ROUTER)(route)
