"""The message-state and contact-window agents in a real worker: what they publish on
`<prefix>.message.state` and `<prefix>.contact.window`, that a callback which changes
nothing publishes nothing, and that a worker killed mid-stream publishes no state that goes
backwards."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from qikflow.topics import Topics
from streams.agents.message_state import fold
from streams.event_facts import EventFacts
from streams.events import Event
from streams.outbound_state import STATUS_BITS, OutboundState
from streams.parsers import Parsed, parse_raw
from streams.state_records import ContactWindowRecord, MessageStateRecord
from tests.streams._states import T0, latest_matches, meta_status, meta_text, read_until
from tests.streams._worker import REPO, WorkerCluster, raw_record, send_raw

FINAL = ("status", "statuses_seen", "sent_at", "delivered_at", "read_at", "failed")


def _events(bodies: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for body in bodies:
        outcome = parse_raw(raw_record(body))
        assert isinstance(outcome, Parsed)
        events.extend(outcome.events)
    return events


def routed(event: Event) -> EventFacts:
    """What dedup's fold reads of an event: its facts, from the JSON the router wrote."""
    return EventFacts.of_routed_json(event.to_json())


def expected_states(bodies: list[bytes]) -> dict[bytes, dict[str, Any]]:
    """The final state of each message, folded here from the same bodies."""
    states: dict[str, OutboundState] = {}
    for event in _events(bodies):
        folded = fold(states.get(event.message_id), routed(event))
        if folded is not None:
            states[event.message_id] = folded
    return {key.encode(): state.to_record() for key, state in states.items()}


CHECKED_IN = Path(__file__).resolve().parents[2] / "schemas"


def assert_valid(records: dict[bytes, list[dict[str, Any]]], name: str) -> None:
    """Every record validates against its checked-in schema and parses with its model."""
    schema = json.loads((CHECKED_IN / f"{name}.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    model = MessageStateRecord if name == "message.state" else ContactWindowRecord
    for history in records.values():
        for record in history:
            validator.validate(record)
            model.model_validate(record)


def assert_only_forward(history: list[dict[str, Any]]) -> None:
    """Each published state of one message is at least as far along as the one before."""
    for before, after in zip(history, history[1:], strict=False):
        context = f"{before} -> {after}"
        assert after["status_rank"] >= before["status_rank"], context
        assert after["failed"] or not before["failed"], context
        assert set(after["statuses_seen"]) >= set(before["statuses_seen"]), context
        assert after["updated_at"] >= before["updated_at"], context
        for name in ("sent_at", "delivered_at", "read_at", "failed_at"):
            if before[name] is not None:
                assert after[name] is not None and after[name] <= before[name], context


def test_states_and_windows_are_published_once_per_change(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    s = timedelta(seconds=1)
    states = [
        meta_status("wamid.S1", "read", T0 + 9 * s),      # read first: rank 3 at once
        meta_status("wamid.S1", "delivered", T0 + 5 * s),  # late: fills delivered_at
        meta_status("wamid.S1", "sent", T0 + 2 * s, pricing={"category": "utility"}),
        meta_status("wamid.S1", "sent", T0 + 2 * s, pricing={"category": "utility"}),  # resent
        meta_status("wamid.S2", "failed", T0 + 3 * s,
                    errors=[{"code": 131026, "title": "Message undeliverable"}]),
        meta_status("wamid.S3", "deleted", T0 + 4 * s),    # deleted: no state at all
    ]
    contact = "919800000077"
    windows = [
        meta_text("wamid.W1", T0, contact),
        meta_text("wamid.W2", T0 + timedelta(hours=1), contact),      # extends
        meta_text("wamid.W3", T0 - timedelta(minutes=30), contact),   # late: opens earlier
        meta_text("wamid.W4", T0 - timedelta(hours=30), contact),     # an old window: nothing
        meta_text("wamid.W5", T0 + timedelta(minutes=20), contact),   # inside: nothing
    ]
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    try:
        cluster.start()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [*states, *windows]))
        expected = expected_states(states)
        published = asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                                           latest_matches(expected, FINAL)))
        window_key = f"acme:+{contact}".encode()
        opened = (T0 - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
        closes = (T0 + timedelta(hours=25)).isoformat().replace("+00:00", "Z")
        window_records = asyncio.run(read_until(
            kafka_bootstrap, topics.contact_window,
            lambda found: bool(found.get(window_key)) and found[window_key][-1]["opened_at"]
            == opened))
        example = subprocess.run(
            [sys.executable, "examples/message_state_consumer.py", "--bootstrap",
             kafka_bootstrap, "--prefix", topic_prefix, "--idle-exit", "3"],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    finally:
        cluster.stop_all()
    # Raw records reach the worker in any order (the raw topic has several partitions):
    # every order gives these states; each record is one more callback.
    assert set(published) == {b"wamid.S1", b"wamid.S2"}
    assert_valid(published, "message.state")
    assert_valid(window_records, "contact.window")
    s1 = published[b"wamid.S1"]
    assert [record["callbacks"] for record in s1] == [1, 2, 3]
    assert_only_forward(s1)
    assert s1[-1] == expected[b"wamid.S1"]
    assert (s1[-1]["status"], s1[-1]["pricing_category"]) == ("read", "utility")
    assert s1[-1]["sent_at"] == (T0 + 2 * s).isoformat().replace("+00:00", "Z")
    (s2,) = published[b"wamid.S2"]
    assert (s2["status"], s2["failed"], s2["error_code"], s2["status_rank"]) == (
        "failed", True, 131026, 0)
    # Whatever the order: the window runs from W3 to 24 h after W2, each record is a
    # change, and none moves the end back.
    history = window_records[window_key]
    assert 2 <= len(history) <= 5
    assert all(after != before for before, after in zip(history, history[1:], strict=False))
    ends = [window["closes_at"] for window in history]
    assert ends == sorted(ends)
    assert (history[-1]["last_message_id"], history[-1]["opened_at"],
            history[-1]["closes_at"]) == ("wamid.W2", opened, closes)
    assert history[-1]["contact"] == f"+{contact}" and history[-1]["account"] == "acme"
    # The consumer example of docs/topics.md ends with the latest state of each message.
    assert "2 message(s):\n  wamid.S1: read, read at " in example.stdout
    assert "  wamid.S2: failed, read at None" in example.stdout


def test_a_callback_that_changes_nothing_publishes_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Past the dedup window a resent callback reaches the agent again: it changes nothing,
    is counted, and publishes nothing."""
    topics = Topics(topic_prefix)
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    cluster.extra_env = {"QIKFLOW_STREAMS_DEDUP_WINDOW_S": "1"}
    sent = meta_status("wamid.N1", "sent", T0)
    delivered = meta_status("wamid.N1", "delivered", T0 + timedelta(seconds=4))
    try:
        worker = cluster.start()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [sent, delivered]))
        expected = expected_states([sent, delivered])
        asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                               latest_matches(expected, FINAL)))
        time.sleep(1.5)  # past the dedup window
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [sent, delivered, sent]))
        deadline = time.monotonic() + 60
        while worker.metrics().get(
                'qikflow_streams_state_unchanged_total{agent="message-state"}', 0) < 2:
            assert time.monotonic() < deadline, "the agent never saw the resent callbacks"
            time.sleep(0.3)
        published = asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                                           lambda found: False, timeout_s=3))
    finally:
        cluster.stop_all()
    assert [record["callbacks"] for record in published[b"wamid.N1"]] == [1, 2]


def test_a_worker_killed_mid_stream_publishes_no_state_that_goes_backwards(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    rng = random.Random(13)
    bodies: list[bytes] = []
    for n in range(300):
        sent_at = T0 + timedelta(seconds=n)
        steps = ["sent", "delivered", "read"] if n % 10 else ["sent", "failed"]
        for offset, status in enumerate(steps):
            bodies.append(meta_status(f"wamid.K{n}", status, sent_at + timedelta(seconds=offset),
                                      contact=f"9198{n:08d}"))
    rng.shuffle(bodies)
    expected = expected_states(bodies)
    cluster = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path)
    try:
        first = cluster.start()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, bodies[:500]))
        # Kill it once it has published some states, mid-stream.
        asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                               lambda found: len(found) >= 50))
        first.kill()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, bodies[500:]))
        cluster.start()
        published = asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                                           latest_matches(expected, FINAL), timeout_s=180))
    finally:
        cluster.stop_all()
    assert set(published) == set(expected)
    for key, history in published.items():
        assert_only_forward(history)
        assert {name: history[-1][name] for name in FINAL} == {
            name: expected[key][name] for name in FINAL}, key


def test_a_worker_without_local_state_recovers_the_states_from_their_topic(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The published topic is the table's changelog: a worker on another machine (no
    RocksDB of its own) takes over from it, so a late callback moves on from the state
    published before (read), instead of starting again from nothing (delivered)."""
    topics = Topics(topic_prefix)
    s = timedelta(seconds=1)
    before = [meta_status("wamid.R1", "sent", T0), meta_status("wamid.R1", "read", T0 + 9 * s)]
    late = meta_status("wamid.R1", "delivered", T0 + 5 * s)
    first = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path / "machine-a")
    second = WorkerCluster(kafka_bootstrap, topic_prefix, tmp_path / "machine-b")
    expected = expected_states([*before, late])
    try:
        worker = first.start()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, before))
        asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                               latest_matches(expected_states(before), FINAL)))
        assert worker.stop() == 0
        second.start()
        asyncio.run(send_raw(kafka_bootstrap, topics.raw, [late]))
        published = asyncio.run(read_until(kafka_bootstrap, topics.message_state,
                                           latest_matches(expected, FINAL)))
    finally:
        second.stop_all()
        first.stop_all()
    history = published[b"wamid.R1"]
    assert [record["callbacks"] for record in history] == [1, 2, 3]
    assert_only_forward(history)
    assert (history[-1]["status"], history[-1]["delivered_at"]) == (
        "read", (T0 + 5 * s).isoformat().replace("+00:00", "Z"))


@pytest.mark.parametrize("status", list(STATUS_BITS))
def test_every_status_moves_a_new_state(status: str) -> None:
    (event,) = _events([meta_status("wamid.F", status, T0)])
    state = fold(None, routed(event))
    assert state is not None
    assert state.statuses == STATUS_BITS[status]
    assert fold(state, routed(event)) is None
    assert orjson.loads(state.to_json())["statuses_seen"] == [status]
