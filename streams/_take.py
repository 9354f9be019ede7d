"""Batches of a Faust stream that end when the stream goes quiet, not when a timer runs out.

Faust's `take_events(max_, within)` waits out `within` whenever fewer than `max_` events
come. Each keyed record bundles many events, so dedup's batches of keyed records almost
never fill, and every event waited up to `QIKFLOW_BATCH_WITHIN_S` (50 ms) before it was
routed, whatever the load (issue 15: receipt to row). A batch here ends when it is full,
when `within` has passed since its first event, or when no event arrived for `QUIET_S`:
what is there is taken at once, and a batch waits only while more is arriving.

The rest is Faust's `take_events` (faust-streaming 0.11, BSD licence), unchanged: the events
are acked once the batch is handled, and the buffer is closed while it is read.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import CancelledError
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import faust
from faust.types import ChannelT, EventT
from mode.utils.aiter import aiter
from mode.utils.futures import notify
from mode.utils.locks import Event

# A batch ends once no event arrived for this long. At 200 webhooks/s dedup gets a keyed
# record every few milliseconds: a 5 ms gap kept each batch open for the whole window
# (receipt to routed p50 75 ms in bench/e2e), 1 ms ends it (48 ms). A backlog arrives in
# fetched chunks, far closer together, so batches still fill under load.
QUIET_S = 0.001


class ArrivingStream(faust.Stream[Any]):
    """A Faust stream with `take_arriving`, the app's stream class (`app.py`)."""

    async def take_arriving(self, max_: int,
                            within: float) -> AsyncGenerator[Sequence[EventT[Any]], None]:
        """Lists of up to `max_` events, each yielded as soon as the stream goes quiet
        (`QUIET_S`) or `within` seconds after its first event; see the module doc."""
        buffer: list[Any] = []
        events: list[EventT[Any]] = []
        buffer_full = Event()
        buffer_started = Event()  # the buffer holds an event
        buffer_consumed = Event()
        stream_enable_acks: bool = self.enable_acks
        buffer_consuming: asyncio.Future[Any] | None = None
        channel_it = aiter(self.channel)

        async def add_to_buffer(value: Any) -> Any:
            try:
                nonlocal buffer_consuming
                if buffer_consuming is not None:
                    try:
                        await buffer_consuming
                    finally:
                        buffer_consuming = None
                buffer.append(value)
                buffer_started.set()
                event = self.current_event
                if event is None:
                    raise RuntimeError("Take buffer found current_event is None")
                events.append(event)
                if len(buffer) >= max_:
                    buffer_full.set()
                    buffer_consumed.clear()
                    await self.wait(buffer_consumed)
            except CancelledError:  # pragma: no cover
                raise
            except Exception as exc:
                self.log.exception("Error adding to take buffer: %r", exc)
                await self.crash(exc)
            return value

        self.enable_acks = False
        self.add_processor(add_to_buffer)
        self._enable_passive(cast("ChannelT[Any]", channel_it))
        try:
            while not self.should_stop:
                await self._until_batch(buffer, buffer_started, buffer_full, within)
                if buffer:
                    buffer_consuming = self.loop.create_future()
                    try:
                        yield list(events)
                    finally:
                        buffer.clear()
                        for event in events:
                            await self.ack(event)
                        events.clear()
                        notify(buffer_consuming)
                        buffer_started.clear()
                        buffer_full.clear()
                        buffer_consumed.set()
        finally:
            self.enable_acks = stream_enable_acks
            self._processors.remove(add_to_buffer)

    async def _until_batch(self, buffer: list[Any], buffer_started: Event,
                           buffer_full: Event, within: float) -> None:
        """Wait for a first event (at most `within`, then again), then while more arrive:
        until the buffer is full, quiet for QUIET_S, or `within` after that first event."""
        await self.wait_for_stopped(buffer_started, timeout=within)
        if not buffer or buffer_full.is_set():
            return
        deadline = time.monotonic() + within
        while not self.should_stop:
            seen = len(buffer)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await self.wait_for_stopped(buffer_full, timeout=min(QUIET_S, left))
            if buffer_full.is_set() or len(buffer) == seen:
                return
