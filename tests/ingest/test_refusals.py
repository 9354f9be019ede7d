"""Tests of ingest/refusals.py: one summary line per period, bounded, never per request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ingest.refusals import MAX_CLIENTS, SUMMARY_PERIOD_S, TOP_CLIENTS, RefusalSummary


def summaries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ingest.refusals"]


def test_counts_are_logged_once_when_the_period_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    summary = RefusalSummary("webhooks for their credentials")
    for client in ("10.0.0.1",) * 30 + ("10.0.0.2",) * 5:
        summary.record("wrong", client)
    for client in [f"10.0.1.{i}" for i in range(8)]:
        summary.record("missing", client)
    assert summaries(caplog) == []

    summary.flush()
    [line] = summaries(caplog)
    assert line.startswith("refused 43 webhooks for their credentials in the last ")
    assert "wrong=35, missing=8; top clients: 10.0.0.1 (30), 10.0.0.2 (5), 10.0.1.0 (1)" in line
    assert line.count("(") == TOP_CLIENTS

    summary.flush()  # a period without refusals says nothing
    assert len(summaries(caplog)) == 1


def test_distinct_clients_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    summary = RefusalSummary("requests")
    for i in range(MAX_CLIENTS + 500):
        summary.record("header_timeout", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    summary.record("header_timeout", "")
    summary.flush()
    [line] = summaries(caplog)
    assert f"refused {MAX_CLIENTS + 501} requests" in line
    assert "top clients: other (501)" in line  # the address-less one came past the bound


async def test_the_summary_comes_by_itself_one_period_after_the_first_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    default = RefusalSummary("requests")
    default.record("header_timeout", "10.0.0.1")
    due = default._timer.when() - loop.time()  # type: ignore[union-attr]
    assert SUMMARY_PERIOD_S - 1 < due <= SUMMARY_PERIOD_S == 60
    default.flush()

    logged = asyncio.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.set()

    handler = Signal()
    logging.getLogger("ingest.refusals").addHandler(handler)
    try:
        quick = RefusalSummary("requests", period_s=0.05)
        quick.record("body_timeout", "10.0.0.9")
        quick.record("body_timeout", "10.0.0.9")
        async with asyncio.timeout(30):
            await logged.wait()
    finally:
        logging.getLogger("ingest.refusals").removeHandler(handler)
    assert "refused 2 requests" in summaries(caplog)[-1]
    assert "body_timeout=2; top clients: 10.0.0.9 (2)" in summaries(caplog)[-1]
