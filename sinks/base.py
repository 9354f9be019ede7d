"""The sink contract: `setup`, `write(batch)`, `close`, and the errors a sink may raise.

Batching, retries, dead-lettering and offset commits live once, in `sinks/driver.py`.
A sink only turns a batch of decoded records into an idempotent write: delivery is
at-least-once, so the same record may be written again after a restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from streams.events import Event, OptOutEvent
from streams.notices import NoticeEvent


class SinkError(Exception):
    """Root error of the sinks. `retriable`: the same write may succeed later (store down)."""

    retriable = False


class StoreUnavailableError(SinkError):
    """The store cannot be reached or refused the write for a reason that passes."""

    retriable = True


class PoisonRecordError(SinkError):
    """A record that can never be written; the driver dead-letters it and carries on."""

    retriable = False


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One decoded Kafka record and where it came from (for logs and dead letters)."""

    topic: str
    partition: int
    offset: int
    event: Event | OptOutEvent | NoticeEvent


class Sink(ABC):
    """A store the driver writes batches into. Subclasses set `name` (`postgres`, `lake`)."""

    name: str

    @abstractmethod
    async def setup(self) -> None:
        """Connect, create or migrate what the store needs. May raise a retriable SinkError."""

    @abstractmethod
    async def write(self, batch: list[SinkRecord]) -> None:
        """Write the batch durably and idempotently; return only once it is safe to commit.

        Raise a retriable SinkError when the store is unavailable (the driver retries the
        same batch), a non-retriable one when some record can never be written (the driver
        splits the batch to find it).
        """

    async def maintain(self) -> None:
        """Housekeeping between batches and when idle (rolling files); nothing by default."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Flush what can be flushed and release connections."""
