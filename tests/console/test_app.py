"""The console app in-process, on the real broker and PostgreSQL: log-in, CSRF, every page,
every bad input, and the two POSTs of a re-drive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from ingest.quarantine import Quarantine
from ingest.spool_file import encode_meta
from qikflow.config import KafkaSettings
from qikflow.console.app import SAMPLER_STOP_S, create_app
from qikflow.console.sampler import Sampler
from qikflow.console.settings import ConsoleSettings
from qikflow.operations.audit import AuditTrail
from qikflow.operations.pipeline import Pipeline
from qikflow.topics import Topics
from sinks.migrate import migrate
from tests._ports import free_port
from tests.console._served import served
from tests.operations._letters import create, produce, raw_record, read_all

USER = ("operator", "s3cret")


def _settings(tmp_path: Path) -> ConsoleSettings:
    return ConsoleSettings(users=SecretStr(":".join(USER)), metrics="",
                           audit_file=tmp_path / "audit.jsonl")


@pytest.fixture
async def migrated(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    return database_url


@pytest.fixture
async def client(topic_prefix: str, migrated: str, tmp_path: Path
                 ) -> AsyncIterator[httpx.AsyncClient]:
    pipeline = Pipeline(KafkaSettings(), migrated, tmp_path / "lake", tmp_path / "spool")
    async with served(create_app(_settings(tmp_path), pipeline, "127.0.0.1")) as running:
        yield running


async def test_every_page_needs_the_console_credentials(client: httpx.AsyncClient) -> None:
    for auth in (None, ("operator", "wrong"), ("webhook-user", "s3cret")):
        answer = await client.get("/dead-letters", auth=auth)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith('Basic realm="qikflow console"')
    assert (await client.get("/", headers={"Authorization": "Basic !!!"})).status_code == 401
    assert (await client.get("/healthz")).text == "ok\n"
    metrics = (await client.get("/metrics")).text
    assert 'qikflow_console_auth_failures_total{reason="wrong"} 2.0' in metrics
    assert 'qikflow_console_auth_failures_total{reason="malformed"} 1.0' in metrics
    page = await client.get("/", auth=USER)
    assert page.status_code == 200 and "operator" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", [
    "/", "/overview/panel", "/messages", "/messages?since=24h&account=acme", "/trace",
    "/dead-letters", "/dead-letters?source=unknown", "/dead-letters?source=sink.dlq",
    "/dead-letters?source=quarantine", "/audit", "/static/console.css", "/static/console.js",
])
async def test_every_page_renders_on_empty_stores(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path, auth=USER)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/dead-letters?since=yesterday", 400, "since &#39;yesterday&#39; is not a time"),
    ("/dead-letters?since=1h&until=2h", 400, "is after until"),
    ("/dead-letters?source=spam", 400, "unknown dead-letter source"),
    ("/dead-letters?cursor=zz", 400, "page cursor"),
    ("/messages?number=12", 400, "is not a phone number"),
    ("/messages?receipt_id=not-a-receipt", 400, "is not a receipt id"),
    ("/trace?id=wamid.nothing", 404, "neither a receipt id nor a message id"),
    ("/messages/wamid.nothing", 404, "no message"),
    ("/dead-letters/letter?ref=dlq:0:5", 404, "no dead letter at dlq:0:5"),
    ("/dead-letters/letter?ref=nonsense", 400, "names no dead letter"),
])
async def test_bad_input_gets_a_page_that_says_what_to_do(client: httpx.AsyncClient, path: str,
                                                    status: int, says: str) -> None:
    answer = await client.get(path, auth=USER)
    assert answer.status_code == status
    assert says in answer.text


async def test_a_filter_that_matches_nothing_says_so(client: httpx.AsyncClient) -> None:
    answer = await client.get("/dead-letters?source=dlq&reason=nothing-like-this", auth=USER)
    assert answer.status_code == 200 and "No dead letter matches the filter" in answer.text
    nothing = await client.get("/messages?number=%2B919999999999", auth=USER)
    assert "Nothing matches" in nothing.text


def _csrf(page: str) -> str:
    marker = 'name="csrf" value="'
    return page[page.index(marker) + len(marker):].split('"', 1)[0]


async def test_redrive_needs_the_token_and_shows_the_count_first(
        topic_prefix: str, migrated: str, tmp_path: Path) -> None:
    kafka = KafkaSettings()
    topics = Topics.from_settings(kafka)
    await create(kafka, topics.raw, topics.unknown)
    records = [raw_record(b'{"event": "x:%d"}' % i) for i in range(3)]
    await produce(kafka, topics.unknown, [(None, r.body, r.headers()) for r in records])
    pipeline = Pipeline(kafka, migrated, tmp_path / "lake", tmp_path / "spool")
    async with served(create_app(_settings(tmp_path), pipeline, "127.0.0.1")) as client:
        listing = await client.get("/dead-letters?source=unknown", auth=USER)
        assert listing.text.count('name="refs"') == 3
        token = _csrf(listing.text)
        form = {"source": "unknown", "mode": "all", "reason": "", "type": "x:*"}
        refused = await client.post("/dead-letters/redrive", data=form, auth=USER)
        forged = await client.post("/dead-letters/redrive", data={**form, "csrf": "f" * 64},
                             auth=USER)
        nobody = await client.post("/dead-letters/redrive", data={**form, "csrf": token})
        empty = await client.post("/dead-letters/redrive", auth=USER,
                            data={**form, "csrf": token, "mode": "selected"})
        dry = await client.post("/dead-letters/redrive", data={**form, "csrf": token},
                                auth=USER)
        assert [a.status_code for a in (refused, forged, nobody, empty)] == [403, 403, 401, 400]
        assert "no dead letter is selected" in empty.text
        assert dry.status_code == 200 and '<strong id="moving">3</strong> will be sent' in dry.text
        assert await read_all(kafka, topics.raw) == []
        done = await client.post("/dead-letters/redrive", auth=USER,
                           data={**form, "csrf": token, "confirm": "yes"})
        assert done.status_code == 200 and "Re-drive done" in done.text
        assert 'qikflow_console_actions_total{outcome="done",source="unknown"} 1.0' in \
            (await client.get("/metrics")).text
    assert sorted(r.value for r in await read_all(kafka, topics.raw)) == sorted(
        r.body for r in records)
    (entry,) = AuditTrail(tmp_path / "audit.jsonl").recent(5)
    assert (entry["who"], entry["source"], entry["sent"]) == ("operator", "unknown", 3)
    assert entry["filter"]["type"] == "x:*"


async def test_kafka_away_is_a_page_that_says_so_and_moves_nothing(migrated: str,
                                                             tmp_path: Path) -> None:
    quarantine = Quarantine.open(tmp_path / "spool")
    record = raw_record(b"{}")
    quarantine.put(record.receipt_id, encode_meta(record), record.body, "MessageSizeTooLarge")
    away = Pipeline(KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), migrated,
                    tmp_path / "lake", tmp_path / "spool")
    async with served(create_app(_settings(tmp_path), away, "127.0.0.1")) as client:
        listing = await client.get("/dead-letters?source=dlq", auth=USER)
        assert listing.status_code == 503 and "did not answer" in listing.text
        token = _csrf((await client.get("/dead-letters?source=quarantine", auth=USER)).text)
        moved = await client.post("/dead-letters/redrive", auth=USER, data={
            "source": "quarantine", "mode": "all", "csrf": token, "confirm": "yes"})
        assert moved.status_code == 503 and "every letter is where it was" in moved.text
        deadline = time.monotonic() + 30
        while "did not answer" not in (await client.get("/overview/panel", auth=USER)).text:
            assert time.monotonic() < deadline, "the overview never reported Kafka away"
            await asyncio.sleep(0.2)
    assert [e.receipt_id for e in quarantine.entries()] == [record.receipt_id]


async def test_anonymous_on_loopback_still_needs_the_csrf_token(topic_prefix: str, migrated: str,
                                                         tmp_path: Path) -> None:
    settings = ConsoleSettings(allow_anonymous=True, metrics="",
                               audit_file=tmp_path / "audit.jsonl")
    pipeline = Pipeline(KafkaSettings(), migrated, tmp_path / "lake", tmp_path / "spool")
    async with served(create_app(settings, pipeline, "::1")) as client:
        page = await client.get("/dead-letters")
        assert page.status_code == 200 and "anonymous" in page.text
        refused = await client.post("/dead-letters/redrive",
                                    data={"source": "dlq", "mode": "all"})
        assert refused.status_code == 403


async def test_a_sampler_that_does_not_stop_holds_up_the_stop_five_seconds_only(
    topic_prefix: str, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Kafka client that never closes keeps the sampler from ending when cancelled; the
    console stops anyway after SAMPLER_STOP_S (its default, 5 s) and says so in one line."""
    stuck: list[asyncio.Task[None]] = []

    async def never_stops(self: Sampler) -> None:
        stuck.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # as a client whose close never returns

    monkeypatch.setattr(Sampler, "run", never_stops)
    assert SAMPLER_STOP_S == 5.0
    pipeline = Pipeline(KafkaSettings(), migrated, tmp_path / "lake", tmp_path / "spool")
    async with served(create_app(_settings(tmp_path), pipeline, "127.0.0.1")) as client:
        assert (await client.get("/healthz")).status_code == 200
        stopping = time.monotonic()
    stopped_s = time.monotonic() - stopping
    try:
        assert SAMPLER_STOP_S <= stopped_s < SAMPLER_STOP_S + 10
        assert [r.message for r in caplog.records if "did not stop" in r.message] == [
            "console: the overview sampler did not stop within 5 s (a Kafka client not "
            "closing); stopping without it"]
    finally:
        for task in stuck:
            task.cancel()
