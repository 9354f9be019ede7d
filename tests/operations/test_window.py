"""`qikflow window PHONE` as an operator types it: open, closed, never wrote, several
accounts, JSON, a number that is none, and a database that is down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from qikflow.cli import main
from sinks.base import SinkRecord
from sinks.postgres import PostgresSink
from tests._ports import free_port
from tests.sinks.events import text_message
from tests.streams.fixtures import events

NOW = datetime.now(UTC).replace(microsecond=0)


async def _messages(database_url: str) -> None:
    """+91...01 wrote 2 h ago (open); +91...02 wrote 30 h ago (closed); +91...03 wrote
    to two accounts."""
    events = [
        text_message("m-open", "+919800000001", at=NOW - timedelta(hours=2)),
        text_message("m-closed", "+919800000002", at=NOW - timedelta(hours=30)),
        text_message("m-acme", "+919800000003", at=NOW - timedelta(hours=1)),
        text_message("m-beta", "+919800000003", at=NOW - timedelta(hours=26)).model_copy(
            update={"account": "beta"}),
    ]
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        await sink.write([SinkRecord("t", 0, n, event) for n, event in enumerate(events)])
    finally:
        await sink.close()


async def test_open_closed_and_no_window(database_url: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    await _messages(database_url)
    # The command runs its own event loop: call it from a thread of this test's loop.
    async def window(*argv: str) -> int:
        return await asyncio.to_thread(main, ["window", *argv])

    assert await window("+91 98000-00001") == 0
    out = capsys.readouterr().out
    closes = (NOW - timedelta(hours=2) + timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%SZ")
    assert f"+919800000001 (account acme): window OPEN until {closes} (21 h" in out
    assert "last incoming message m-open" in out

    assert await window("919800000002") == 3
    out = capsys.readouterr().out
    assert "window CLOSED since" in out and "Only template messages may be sent" in out

    assert await window("+919800000009") == 3
    assert "+919800000009: no incoming message on record, so no window" in (
        capsys.readouterr().out)

    assert await window("+919800000003", "--json") == 0
    answers = orjson.loads(capsys.readouterr().out)
    assert [(a["account"], a["open"]) for a in answers] == [("acme", True), ("beta", False)]
    assert answers[0]["seconds_left"] > 22 * 3600
    assert answers[1]["seconds_left"] == 0

    assert await window("+919800000003", "--account", "beta") == 3
    assert "(account beta): window CLOSED" in capsys.readouterr().out


def test_a_number_that_is_none_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["window", "call me"]) == 2
    assert "qikflow window: not a phone number: 'call me'" in capsys.readouterr().err


async def test_a_customer_known_only_by_user_id_is_looked_up_by_it(
    database_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    (first, _) = events("meta-user-id-only")
    recent = first.model_copy(update={"occurred_at": NOW - timedelta(hours=1),
                                      "received_at": NOW - timedelta(hours=1)})
    sink = PostgresSink(database_url)
    await sink.setup()
    try:
        await sink.write([SinkRecord("t", 0, 0, recent)])
    finally:
        await sink.close()
    assert await asyncio.to_thread(main, ["window", "IN.5522004411223344"]) == 0
    assert "IN.5522004411223344 (account " in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["window", "IN."]) == 2
    assert "or a business-scoped user id" in capsys.readouterr().err


def test_a_database_that_is_down_is_reported(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QIKFLOW_DATABASE_URL",
                       f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    assert main(["window", "+919800000001"]) == 1
    err = capsys.readouterr().err
    assert "qikflow window: PostgreSQL at 127.0.0.1:" in err and "did not answer" in err
