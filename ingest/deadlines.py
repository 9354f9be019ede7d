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
from collections.abc import Callable
from typing import Any

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


class TaskDeadline:
    """Cancels the task that made it once `delay_s` has passed and the loop has then read its
    sockets (a Deadline): what `asyncio.timeout` does, with one timer and no context manager,
    for the webhook's hot path (docs/performance.md: two `asyncio.timeout` and one
    `asyncio.wait` a request cost about a tenth of the ingest's CPU).

    The block it guards catches CancelledError and asks `expired()`: True means the
    cancellation was this deadline's (and it is taken back), so the block overran; False,
    that someone else cancelled the task, and the error must go on. `cancel()` once the
    block is over, whatever happened.
    """

    __slots__ = ("_deadline", "_due", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float) -> None:
        self._task = _running_task(loop)
        self._due = False
        self._deadline = Deadline(loop, delay_s, self._cancel_task)

    def _cancel_task(self) -> None:
        self._due = True
        self._task.cancel()

    def expired(self) -> bool:
        return self._due and self._task.uncancel() == 0

    def cancel(self) -> None:
        self._deadline.cancel()


class AckDeadline:
    """One timer for one produce and its acknowledgement, due `delay_s` after it is made.

    While `producer.send()` runs (it waits only while the producer's buffer is full or the
    topic's metadata is missing) the timer cancels the task, as TaskDeadline does; once
    `until_done(delivery)` waits for the acknowledgement, it ends that wait instead, and the
    delivery itself is never cancelled (a late one may still succeed). `cancel()` at the end,
    whatever happened. The publisher used an `asyncio.timeout` and an `asyncio.wait`, then
    two timers (docs/performance.md).
    """

    __slots__ = ("_due", "_task", "_timer", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float) -> None:
        self._task = _running_task(loop)
        self._due = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer = loop.call_later(delay_s, self._fire)

    def _fire(self) -> None:
        self._due = True
        if self._waiter is None:
            self._task.cancel()
        elif not self._waiter.done():
            self._waiter.set_result(None)

    def expired(self) -> bool:
        """After a CancelledError from `send()`: True (the cancellation taken back) when it
        was this deadline's."""
        return self._due and self._task.uncancel() == 0

    async def until_done(self, future: asyncio.Future[object]) -> None:
        """Return once `future` is done or the deadline has come, whichever is first."""
        if self._due:
            return
        waiter: asyncio.Future[None] = future.get_loop().create_future()
        self._waiter = waiter

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        future.add_done_callback(wake)
        try:
            await waiter
        finally:
            future.remove_done_callback(wake)

    def cancel(self) -> None:
        self._timer.cancel()


def _running_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any]:
    task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("a deadline that cancels its task is made inside one")
    return task
