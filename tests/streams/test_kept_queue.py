"""Tests of streams/_kept_queue.py: a clear on resume keeps the buffered records of the
partitions the consumer still owns, in order, and drops the others as Faust does."""

from __future__ import annotations

from dataclasses import dataclass

from faust.types import TP
from mode.utils.queues import FlowControlEvent

from streams._kept_queue import KeptOnResumeQueue

OWNED, REVOKED = TP("t.status.read", 0), TP("t.status.read", 1)


@dataclass(frozen=True)
class FakeMessage:
    tp: TP
    offset: int


@dataclass(frozen=True)
class FakeEvent:
    message: FakeMessage


def _queue(owned: set[TP], kept: list[int]) -> KeptOnResumeQueue:
    return KeptOnResumeQueue(flow_control=FlowControlEvent(), clear_on_resume=True,
                             assigned=lambda: owned, on_kept=kept.append)


def test_a_clear_keeps_the_records_of_owned_partitions_in_order() -> None:
    kept: list[int] = []
    queue = _queue({OWNED}, kept)
    items = [FakeMessage(OWNED, 7), FakeMessage(REVOKED, 3), FakeEvent(FakeMessage(OWNED, 8)),
             FakeMessage(REVOKED, 4)]
    for item in items:
        queue.put_nowait(item)
    queue.clear()
    assert [queue.get_nowait(), queue.get_nowait()] == [items[0], items[2]]
    assert queue.empty()
    assert kept == [2]


def test_a_consumer_that_owns_nothing_keeps_nothing() -> None:
    kept: list[int] = []

    def not_started() -> set[TP]:
        raise RuntimeError("consumer not started")

    queue = KeptOnResumeQueue(flow_control=FlowControlEvent(), clear_on_resume=True,
                              assigned=not_started, on_kept=kept.append)
    queue.put_nowait(FakeMessage(OWNED, 1))
    queue.clear()
    assert queue.empty() and kept == []


def test_resuming_the_flow_clears_as_faust_does_but_keeps_owned_records() -> None:
    kept: list[int] = []
    flow = FlowControlEvent()
    queue = KeptOnResumeQueue(flow_control=flow, clear_on_resume=True,
                              assigned=lambda: {OWNED}, on_kept=kept.append)
    queue.put_nowait(FakeMessage(OWNED, 1))
    queue.put_nowait(FakeMessage(REVOKED, 1))
    flow.suspend()
    flow.resume()  # Faust's recovery calls this; it clears every managed queue
    assert queue.get_nowait() == FakeMessage(OWNED, 1)
    assert queue.empty() and kept == [1]
