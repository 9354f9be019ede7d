"""The console on the real stack (ingest, worker, sinks, console as processes; the shared
Kafka and PostgreSQL), driven in Debian's Chromium by Playwright. Each test saves the
screenshots docs/console.md shows: into a temporary folder, or into the folder that
QIKFLOW_SCREENSHOTS names (`QIKFLOW_SCREENSHOTS=docs/images` refreshes the docs' ones).

The tests run in file order on one stack: the overview test counts webhooks from zero.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from playwright.async_api import Browser, Page, async_playwright, expect

from ingest.record import RECEIPT_ID
from qikflow.kafka_admin import topic_configs
from qikflow.local.databases import create_database, drop_database
from qikflow.operations.database import Database
from qikflow.operations.dead_letters import DeadLetterFilter
from qikflow.operations.redrive import redrive
from qikflow.operations.trace import trace
from qikflow.size_budget import TOPIC_LIMIT
from streams import headers as names
from tests.console._stack import CONSOLE_PASSWORD, CONSOLE_USER, ConsoleStack, until
from tests.console._webhooks import NEW_EVENT, ago, incoming, status
from tests.operations._letters import read_all

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update"]
IMAGES = Path(os.environ.get("QIKFLOW_SCREENSHOTS")
              or Path(tempfile.gettempdir()) / "qikflow-screenshots")
WAIT_MS = 60_000
# The dedup test's event is larger than this: message.image, shrunk to it while the worker
# runs, refuses the event until it is raised again.
SMALL_TOPIC_BYTES = "1024"


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, postgres_admin_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleStack]:
    name, url = await create_database(postgres_admin_url, "console")
    running = ConsoleStack(kafka_bootstrap, url, tmp_path_factory.mktemp("console"))
    try:
        await running.start()
        yield running
    finally:
        await running.stop()
        await drop_database(postgres_admin_url, name)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, stack: ConsoleStack) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=stack.console_url, viewport={"width": 1440, "height": 900},
        http_credentials={"username": CONSOLE_USER, "password": CONSOLE_PASSWORD})
    opened = await context.new_page()
    yield opened
    await context.close()


def _number() -> str:
    return "+9198" + str(uuid.uuid4().int)[:8]


async def _screenshot(page: Page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=IMAGES / f"console-{name}.png", full_page=True)


async def test_the_overview_numbers_move_when_webhooks_arrive(page: Page,
                                                              stack: ConsoleStack) -> None:
    await page.goto("/")
    accepted = page.locator('tr[data-figure="webhooks accepted (200)"] td.value')
    await expect(accepted).to_have_text("-", timeout=WAIT_MS)
    number = _number()
    for n in range(3):
        await stack.send(incoming(f"wamid.OV{n}-{uuid.uuid4().hex[:8]}", number, f"hello {n}"))
    # The panel refreshes itself every sample (5 s by default): no reload.
    await expect(accepted).to_have_text("3", timeout=WAIT_MS)
    raw = page.locator('tr[data-figure="records written"] td.value')
    await expect(raw).to_have_text("3", timeout=WAIT_MS)
    await expect(page.locator('tr[data-figure="postgres: rows written"] td.value')).to_have_text(
        "3", timeout=WAIT_MS)
    await expect(page.locator(".badge.down")).to_have_count(0)


async def test_search_by_phone_number_and_the_status_history(page: Page,
                                                             stack: ConsoleStack) -> None:
    number = _number()
    sent_id, failed_id = f"wamid.OUT-{uuid.uuid4().hex[:8]}", f"wamid.FAIL-{uuid.uuid4().hex[:8]}"
    await stack.send(incoming(f"wamid.IN-{uuid.uuid4().hex[:8]}", number, "Is my order shipped?"))
    # Out of order, as webhooks can arrive: read first, sent last.
    await stack.send(status(sent_id, number, "read", ago(30)))
    await stack.send(status(sent_id, number, "delivered", ago(85)))
    await stack.send(status(sent_id, number, "sent", ago(88)))
    await stack.send(status(failed_id, number, "failed", ago(20),
                            error=(131026, "Message undeliverable")))
    await stack.rows("SELECT 1 FROM message_status_events WHERE contact = $1", number,
                     expected=4)
    await stack.rows("SELECT 1 FROM inbound_messages WHERE contact = $1", number)

    await page.goto("/messages")
    spaced = f"{number[:3]} {number[3:8]}-{number[8:]}"
    await page.fill('input[name="number"]', spaced)
    await page.click('button[type="submit"]')
    results = page.locator("#results tbody tr")
    await expect(results).to_have_count(3)
    await _screenshot(page, "messages")

    await page.click(f"text={sent_id}")
    await expect(page.locator("#state")).to_have_text("read")
    await expect(page.locator("#history td.status")).to_have_text(["sent", "delivered", "read"])
    await _screenshot(page, "message")
    await page.goto(f"/messages/{failed_id}")
    await expect(page.locator("#state")).to_have_text("failed")
    await expect(page.locator("#history")).to_contain_text("the number is not on WhatsApp")
    await _screenshot(page, "message-failed")


async def test_the_trace_of_a_webhook_shows_its_raw_offset_and_rows(page: Page,
                                                                    stack: ConsoleStack) -> None:
    message_id = f"wamid.TR-{uuid.uuid4().hex[:8]}"
    receipt = await stack.send(incoming(message_id, _number(), "Where is my refund?"))
    raw = await _with_header(stack, f"{stack.prefix}.raw", RECEIPT_ID, receipt)
    assert len(raw) == 1
    await stack.rows("SELECT 1 FROM inbound_messages WHERE message_id = $1", message_id)
    db = Database(stack.database_url)

    async def in_the_lake() -> str | None:
        traced = await trace(stack.pipeline, db, receipt, window_s=3600, scan_limit=20_000)
        return traced.receipts[0].events[0].lake_file

    try:  # the lake rolls every 2 s here
        await until(in_the_lake, "a lake file")
    finally:
        await db.close()

    await page.goto(f"/trace?id={receipt}")
    where = f"{stack.prefix}.raw[{raw[0].partition}]@{raw[0].offset}"
    await expect(page.locator("section.receipt code.where").first).to_have_text(where)
    await expect(page.locator('table[data-table="inbound_messages"]')).to_contain_text(message_id)
    await expect(page.locator("pre.body-json")).to_contain_text("Where is my refund?")
    await expect(page.locator("code.lake-file")).to_contain_text("type=message.text/date=")
    await _screenshot(page, "trace")


async def test_an_unknown_body_is_redriven_after_the_worker_learns_its_type(
        page: Page, stack: ConsoleStack) -> None:
    message_id = f"wamid.NEW-{uuid.uuid4().hex[:8]}"
    number = _number()
    receipt = await stack.send(incoming(message_id, number, "sent with a new event name",
                                        event=NEW_EVENT))
    await page.goto("/dead-letters?source=unknown")
    unknown = f"{stack.prefix}.unknown"
    await until(lambda: _with_header(stack, unknown, RECEIPT_ID, receipt), "routed to unknown")
    await page.goto("/dead-letters?source=unknown")
    row = page.locator("#letters tbody tr", has_text=receipt[:13])
    await _screenshot(page, "dead-letters")

    stack.learned_flag.touch()  # today's code now knows the event
    await row.locator('input[name="refs"]').check()
    await page.click('button[value="selected"]')
    await expect(page.locator("#moving")).to_have_text("1")
    await _screenshot(page, "redrive")
    await page.click("#confirm")
    await expect(page.locator("h1")).to_have_text("Re-drive done")
    rows = await stack.rows("SELECT contact, text FROM inbound_messages WHERE message_id = $1",
                            message_id)
    assert [tuple(r) for r in rows] == [(number, "sent with a new event name")]
    text = await _with_header(stack, f"{stack.prefix}.message.text", names.EVENT_ID, message_id)
    assert len(text) == 1
    await page.goto("/audit")
    await expect(page.locator("#audit tbody tr").first).to_contain_text(CONSOLE_USER)


async def test_a_redrive_without_csrf_token_or_credentials_moves_nothing(
        stack: ConsoleStack) -> None:
    raw_before = len(await read_all(stack.kafka, f"{stack.prefix}.raw"))
    form = {"source": "unknown", "mode": "all", "confirm": "yes"}
    async with httpx.AsyncClient(base_url=stack.console_url, timeout=30) as client:
        anonymous = await client.post("/dead-letters/redrive", data=form)
        wrong = await client.post("/dead-letters/redrive", data=form, auth=("operator", "nope"))
        no_token = await client.post("/dead-letters/redrive", data=form,
                                     auth=(CONSOLE_USER, CONSOLE_PASSWORD))
        forged = await client.post("/dead-letters/redrive", data={**form, "csrf": "0" * 64},
                                   auth=(CONSOLE_USER, CONSOLE_PASSWORD))
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert (no_token.status_code, forged.status_code) == (403, 403)
    assert "Nothing was re-driven" in no_token.text
    assert len(await read_all(stack.kafka, f"{stack.prefix}.raw")) == raw_before


async def test_dedup_drops_delivered_copies_but_not_a_dead_lettered_event(
        stack: ConsoleStack) -> None:
    """message.image refuses the event (1 KiB topic), so dedup dead-letters it. Once the
    topic takes it, the re-drive routes it (issue 11: dedup does not remember a
    dead-lettered event); a second re-drive of the same letter is a delivered copy, dropped."""
    image = f"{stack.prefix}.message.image"
    await _topic_bytes(stack, image, SMALL_TOPIC_BYTES)
    message_id = f"wamid.IMG-{uuid.uuid4().hex[:8]}"
    caption = "a long caption " * 100
    await stack.send(incoming(message_id, _number(), "", wire="image",
                              content={"url": "https://media.example.invalid/x.jpg",
                                       "mime_type": "image/jpeg", "caption": caption}))
    letters = await until(lambda: _with_header(stack, f"{stack.prefix}.dlq", names.EVENT_ID,
                                               message_id), "dedup's dead letter")
    assert len(letters) == 1, stack.logs()
    await _topic_bytes(stack, image, "1048576")

    selection = DeadLetterFilter(type="message.image")
    first = await redrive(stack.pipeline, "dlq", selection, window_s=3600)
    assert first.sent == 1, first.lines()
    rows = await stack.rows("SELECT caption FROM inbound_messages WHERE message_id = $1",
                            message_id, timeout_s=30)
    assert [r["caption"] for r in rows] == [caption], "the dead-lettered event was dropped"

    deduplicated = await _worker_counter(stack, "qikflow_streams_deduplicated_events_total")
    second = await redrive(stack.pipeline, "dlq", selection, window_s=3600)
    assert second.sent == 1

    async def dropped() -> bool:
        return await _worker_counter(stack, "qikflow_streams_deduplicated_events_total") \
            > deduplicated

    await until(dropped, "the second copy dropped by dedup")
    routed = [r for r in await read_all(stack.kafka, image)
              if orjson.loads(r.value)["event_id"] == message_id]
    assert len(routed) == 1, "a delivered copy was routed again"


async def test_the_overview_shows_what_the_run_left_behind(page: Page,
                                                           stack: ConsoleStack) -> None:
    """Last: the dead letter dedup wrote and the copy it dropped are on the overview."""
    await page.goto("/")
    held = page.locator(f'tr[data-figure="held in {stack.prefix}.dlq"] td.value')
    await expect(held).to_have_text("1", timeout=WAIT_MS)
    dropped = page.locator('tr[data-figure="copies dropped by dedup"] td.value')
    await expect(dropped).to_have_text(re.compile(r"^[1-9]"), timeout=WAIT_MS)
    await expect(page.locator(f'tr[data-figure="held in {stack.prefix}.unknown"] td.value')
                 ).to_have_text("1")
    await _screenshot(page, "overview")


async def _topic_bytes(stack: ConsoleStack, topic: str, size: str) -> None:
    """Set the largest record batch `topic` takes, and wait until the broker applies it
    (the change reaches the broker through its metadata log, a moment after the answer)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  {TOPIC_LIMIT: size})])

        async def applied() -> bool:
            return (await topic_configs(stack.kafka, topic)).get(TOPIC_LIMIT) == size

        await until(applied, f"{TOPIC_LIMIT}={size} on {topic}")
    finally:
        await admin.close()


async def _with_header(stack: ConsoleStack, topic: str, name: str, value: str
                       ) -> list[ConsumerRecord]:
    return [record for record in await read_all(stack.kafka, topic)
            if dict(record.headers).get(name) == value.encode()]


async def _worker_counter(stack: ConsoleStack, name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{stack.ports['worker']}/metrics")).text
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith(name))
