"""Sending from agents: records go out through the app's producer, and a batch is only
acknowledged once every record it sent is delivered or dead-lettered.

Faust commits the offset of an acked event after flushing the producer, but a record the
broker refused after the producer's retries would still be committed, and lost. So every
agent calls `settle()` before its batch is acked: a record that was not delivered sends its
source record to `<prefix>.dlq` with the error, and if even that fails the process exits at
once, before Faust can commit, so the batch is read again on restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from qikflow.streams import topics as names

if TYPE_CHECKING:
    from faust.types import Message

    from qikflow.streams.app import StreamsApp

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
# Exit status of a worker that stopped because Kafka refused even the dead-letter record.
EXIT_UNDELIVERABLE = 75


def headers_of(message: Message) -> Headers:
    """The record headers of a consumed message as a list of (name, bytes)."""
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None = message.headers
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def header(headers: Headers, name: str) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return ""


def context(message: Message) -> str:
    """Where a record came from, for log lines."""
    return f"{message.topic}[{message.partition}]@{message.offset}"


class Output:
    """What one agent sends, with the delivery futures of its current batch."""

    def __init__(self, streams: StreamsApp, agent: str) -> None:
        self._app = streams.app
        self._dlq = streams.topics.dlq
        self._metrics = streams.metrics
        self.agent = agent
        # (delivery future, the consumed record it came from, is it a dead-letter record)
        self._pending: list[tuple[asyncio.Future[Any], Message, bool]] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        source: Message,
    ) -> None:
        """Queue one record; `source` is the consumed record it came from."""
        future = await self._app.producer.send(topic, key, value, None, None, headers)
        self._pending.append((cast("asyncio.Future[Any]", future), source, False))

    async def dead_letter(self, source: Message, error: str) -> None:
        """Queue `source` for `<prefix>.dlq`: its bytes and headers, plus why and where."""
        self._metrics.dead_lettered.labels(agent=self.agent).inc()
        headers = [
            *headers_of(source),
            (names.ERROR, error.encode("utf-8", "replace")),
            (names.FAILED_AGENT, self.agent.encode()),
            (names.SOURCE_TOPIC, source.topic.encode()),
            (names.SOURCE_PARTITION, str(source.partition).encode()),
            (names.SOURCE_OFFSET, str(source.offset).encode()),
        ]
        future = await self._app.producer.send(
            self._dlq, source.key, source.value, None, None, headers
        )
        self._pending.append((cast("asyncio.Future[Any]", future), source, True))

    async def fail(self, source: Message, exc: BaseException) -> None:
        """An exception while handling `source`: log it with context and dead-letter it."""
        self._metrics.agent_failures.labels(agent=self.agent).inc()
        logger.error(
            "agent %s failed on %s (event %s): %s: %s",
            self.agent, context(source),
            header(headers_of(source), names.EVENT_ID) or "-", type(exc).__name__, exc,
            exc_info=exc,
        )
        await self.dead_letter(source, f"{type(exc).__name__}: {exc}")

    async def settle(self) -> None:
        """Wait until everything queued since the last call is delivered (see module doc)."""
        while self._pending:
            pending, self._pending = self._pending, []
            await asyncio.wait([future for future, _, _ in pending])
            for future, source, was_dead_letter in pending:
                error = future.exception()
                if error is None:
                    continue
                if was_dead_letter:
                    self._give_up(source, error)
                logger.error(
                    "agent %s could not deliver a record from %s: %r",
                    self.agent, context(source), error,
                )
                await self.dead_letter(source, f"undeliverable: {type(error).__name__}: {error}")

    def _give_up(self, source: Message, error: BaseException) -> None:
        logger.critical(
            "agent %s cannot deliver %s even to %s (%r); exiting before Faust commits it, "
            "so it is read again after a restart",
            self.agent, context(source), self._dlq, error,
        )
        logging.shutdown()
        os._exit(EXIT_UNDELIVERABLE)
