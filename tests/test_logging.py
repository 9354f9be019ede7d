"""Tests of qikflow/_logging.py: the flood guard covers every logger, at its default window."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.outage import Outage
from qikflow import _logging
from qikflow._logging import ALWAYS, REPEAT_WINDOW_S, RepeatFilter, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def captured(clock: Clock) -> Iterator[io.StringIO]:
    """configure_logging() as every qikflow command calls it, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    uvicorn_filters = {name: logging.getLogger(name).filters[:]
                       for name in _logging.OWN_HANDLER_LOGGERS}
    configure_logging("INFO")
    stream = io.StringIO()
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        for guard in handler.filters:
            assert isinstance(guard, RepeatFilter)
            guard.clock = clock
    yield stream
    root.handlers, root.level = saved[0], saved[1]
    for name, filters in uvicorn_filters.items():
        logging.getLogger(name).filters = filters


def test_any_logger_is_folded_once_per_default_window(
    clock: Clock, captured: io.StringIO
) -> None:
    assert REPEAT_WINDOW_S == 30.0
    for logger_name in ("ingest.publisher", "asyncio", "some.library"):
        log = logging.getLogger(logger_name)
        for attempt in range(500):
            log.warning("cannot reach %s (attempt %d)", "kafka:9092", attempt)
    lines = captured.getvalue().splitlines()
    assert len(lines) == 3
    clock.now += REPEAT_WINDOW_S - 0.1
    logging.getLogger("ingest.publisher").warning("cannot reach %s (attempt %d)", "k", 1)
    assert len(captured.getvalue().splitlines()) == 3
    clock.now += 0.2
    logging.getLogger("ingest.publisher").warning("cannot reach %s (attempt %d)", "k", 2)
    last = captured.getvalue().splitlines()[-1]
    assert last.endswith("(and 500 similar in the last 30s)")
    # INFO is never folded: state changes are one line each already.
    for _ in range(3):
        logging.getLogger("ingest.drainer").info("drained %d", 1)
    assert len(captured.getvalue().splitlines()) == 7


def test_the_start_of_every_outage_is_logged_even_within_the_window(
    clock: Clock, captured: io.StringIO
) -> None:
    """A Kafka outage that ends and begins again 4 s later logged its end twice and its
    second start not at all (found in a leader-kill drill's ingest log): the start and end
    lines of a fault pass the guard, as its own state keeps them to one each."""
    for _ in range(2):
        outage = Outage.begin("no ack within 1000 ms", "kafka:9092", Path("/spool"))
        clock.now += 4
        outage.end("acme.raw")
    lines = captured.getvalue().splitlines()
    assert [("unavailable" in line, "takes writes again" in line) for line in lines] == [
        (True, False), (False, True), (True, False), (False, True)]
    logging.getLogger("ingest.publisher").warning("flood %d", 1, extra=ALWAYS)
    logging.getLogger("ingest.publisher").warning("flood %d", 2)
    logging.getLogger("ingest.publisher").warning("flood %d", 3)
    assert len(captured.getvalue().splitlines()) == 6  # the guard still folds the rest


def test_preformatted_messages_fold_by_their_first_line(
    clock: Clock, captured: io.StringIO
) -> None:
    # asyncio formats these itself, so no two messages are equal beyond the first line.
    for number in range(1000):
        logging.getLogger("asyncio").error(
            f"Future exception was never retrieved\nfuture: <Future at 0x{number:x}>")
    assert captured.getvalue().count("Future exception was never retrieved") == 1


def test_uvicorn_loggers_with_handlers_of_their_own_are_guarded() -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        configure_logging("INFO")
        for name in ("uvicorn", "uvicorn.error"):
            assert any(isinstance(f, RepeatFilter) for f in logging.getLogger(name).filters)
        assert all(any(isinstance(f, RepeatFilter) for f in h.filters) for h in root.handlers)
    finally:
        root.handlers = saved
        for name in _logging.OWN_HANDLER_LOGGERS:
            logger = logging.getLogger(name)
            logger.filters = [f for f in logger.filters if not isinstance(f, RepeatFilter)]


def test_memory_is_bounded_by_forgetting_old_messages(clock: Clock) -> None:
    guard = RepeatFilter(clock=clock)
    for number in range(_logging.MAX_TRACKED * 3):
        clock.now += 1
        guard.filter(logging.LogRecord("x", logging.WARNING, "", 0, f"m{number}", None, None))
    assert len(guard._seen) <= _logging.MAX_TRACKED
