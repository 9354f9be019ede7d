"""Tests of ingest/deadlines.py: the timers that cancel a request's task or end its wait."""

from __future__ import annotations

import asyncio

import pytest

from ingest.deadlines import AckDeadline, TaskDeadline

SHORT_S = 0.01
LONG_S = 30.0


async def test_a_task_deadline_cancels_an_overrun_block_and_says_so() -> None:
    deadline = TaskDeadline(asyncio.get_running_loop(), SHORT_S)
    with pytest.raises(asyncio.CancelledError):
        try:
            await asyncio.sleep(LONG_S)
        finally:
            deadline.cancel()
    assert deadline.expired()
    await asyncio.sleep(0)  # the cancellation was taken back: the task goes on


async def test_a_task_deadline_leaves_a_block_that_ends_in_time_alone() -> None:
    deadline = TaskDeadline(asyncio.get_running_loop(), SHORT_S)
    await asyncio.sleep(0)
    deadline.cancel()
    await asyncio.sleep(SHORT_S * 10)  # past the deadline: nothing cancels the task
    assert not deadline.expired()


async def test_a_cancellation_from_elsewhere_is_not_the_deadlines() -> None:
    async def guarded() -> bool:
        deadline = TaskDeadline(asyncio.get_running_loop(), LONG_S)
        try:
            await asyncio.sleep(LONG_S)
        except asyncio.CancelledError:
            return deadline.expired()
        finally:
            deadline.cancel()
        return True

    task = asyncio.create_task(guarded())
    await asyncio.sleep(0)
    task.cancel()
    assert await task is False


async def test_an_ack_deadline_ends_the_wait_but_never_cancels_the_delivery() -> None:
    loop = asyncio.get_running_loop()
    delivery: asyncio.Future[object] = loop.create_future()
    deadline = AckDeadline(loop, SHORT_S)
    await deadline.until_done(delivery)
    deadline.cancel()
    assert not delivery.done()  # still there to succeed late
    delivery.set_result(None)


async def test_an_ack_deadline_returns_with_the_delivery() -> None:
    loop = asyncio.get_running_loop()
    delivery: asyncio.Future[object] = loop.create_future()
    deadline = AckDeadline(loop, LONG_S)
    loop.call_soon(delivery.set_result, "acknowledged")
    await deadline.until_done(delivery)
    deadline.cancel()
    assert delivery.result() == "acknowledged"


async def test_an_ack_deadline_cancels_a_send_that_waits_too_long() -> None:
    deadline = AckDeadline(asyncio.get_running_loop(), SHORT_S)
    with pytest.raises(asyncio.CancelledError):
        try:
            await asyncio.sleep(LONG_S)  # a producer whose buffer stays full
        finally:
            deadline.cancel()
    assert deadline.expired()
