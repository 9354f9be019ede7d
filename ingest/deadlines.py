"""Deadlines for request heads and bodies that a stalled process does not miss by its own
fault.

After the process stalls (a long garbage-collector pause, a starved CPU, SIGSTOP), its event
loop runs the timers that came due before it reads its sockets: uvloop, like libuv, runs
timers first in each turn. A head or body deadline would then expire although the bytes
arrived in time and wait, unread, in the socket: a 408 for a webhook that Qikchat does not
send again. So a deadline that comes due only arms a second, short timer (IO_GRACE_S); the
loop polls its sockets before that one can fire, and whatever arrived meanwhile is read
first. A client that really is too slow is refused IO_GRACE_S later than the setting says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

IO_GRACE_S = 0.05


class Deadline:
    """`callback` once `delay_s` has passed and the loop has then read its sockets;
    `cancel()` as for a TimerHandle."""

    __slots__ = ("_callback", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float,
                 callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle = loop.call_later(delay_s, self._due)

    def _due(self) -> None:
        self._handle = self._loop.call_later(IO_GRACE_S, self._callback)

    def cancel(self) -> None:
        self._handle.cancel()


@asynccontextmanager
async def timeout_after_io(delay_s: float) -> AsyncIterator[None]:
    """`asyncio.timeout(delay_s)` (TimeoutError when the block overruns), whose deadline
    lets the loop read what arrived before it cancels the block."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as timeout:
        due = loop.call_later(delay_s, lambda: timeout.reschedule(loop.time() + IO_GRACE_S))
        try:
            yield
        finally:
            due.cancel()
