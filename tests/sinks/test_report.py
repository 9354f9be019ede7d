"""`qikflow report`: the HTML page holds the hand-computed figures, needs no network, and
renders in Debian's Chromium (Playwright). The browser test saves the screenshot that
docs/sinks.md shows: into a temporary folder, or into the folder QIKFLOW_SCREENSHOTS names
(`QIKFLOW_SCREENSHOTS=docs/images` refreshes the docs' one).
"""

from __future__ import annotations

import html
import os
import random
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from sinks.report import render_report, write_report
from sinks.stats import compute_stats
from streams.events import (
    Event,
    InteractiveContent,
    LocationContent,
    MediaContent,
    OptOutEvent,
    Pricing,
    StatusContent,
    TextContent,
)
from tests.sinks.events import T0
from tests.sinks.test_stats import (
    EXPECTED_PRICING,
    INBOUND,
    delivery_figures,
    expected_volume,
    fixture_events,
    undelivered_figures,
    write_lake,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update"]
IMAGES = Path(os.environ.get("QIKFLOW_SCREENSHOTS")
              or Path(tempfile.gettempdir()) / "qikflow-screenshots")
NOW = T0 + timedelta(hours=3)


FIGURE = re.compile(r'data-figure="([^"]*)" data-value="([^"]*)">([^<]*)<')


def figures_of(page: str) -> dict[str, tuple[str, str]]:
    """Every figure of a page: name -> (its exact value, the text a reader sees first)."""
    return {html.unescape(name): (html.unescape(value), html.unescape(shown).strip())
            for name, value, shown in FIGURE.findall(page)}


def _value(value: Any) -> str:
    return "" if value is None else str(value)


def expected_page_figures() -> dict[str, str]:
    """Every figure the page of the test_stats fixture shows, by name, from the hand counts."""
    everyone = delivery_figures()
    funnel = everyone["funnel"]
    expected: dict[str, Any] = {"events": len({e.event_id for e in fixture_events()})}
    for stage in ("sent", "delivered", "read", "failed"):
        expected[f"funnel.{stage}"] = funnel[stage]
    for rate in ("delivered_rate", "read_rate"):
        expected[f"funnel.{rate}"] = funnel[rate]
        expected[f"summary.{rate}"] = funnel[rate]
    expected.update({"summary.sent": funnel["sent"], "summary.failed": funnel["failed"],
                     "summary.p50_deliver_s": everyone["time_to_deliver"]["p50_s"]})
    for row in expected_volume(fixture_events()):
        expected[f"volume.{row['hour']}.{row['type']}"] = row["events"]
    for name in ("time_to_deliver", "time_to_read"):
        latency = everyone[name]
        for key in ("count", "p50_s", "p90_s", "p99_s"):
            expected[f"{name}.{key}"] = latency[key]
        for bucket in latency["buckets"]:
            expected[f"{name}.{bucket['bucket']}"] = bucket["messages"]
    for row in everyone["failures"]:
        expected[f"failures.{row['error_code']}"] = row["messages"]
    for account in ("acme", "globex"):
        figures, key = delivery_figures(account), f"accounts.{account}"
        for stage in ("sent", "delivered", "read", "failed"):
            expected[f"{key}.funnel.{stage}"] = figures["funnel"][stage]
        for name in ("time_to_deliver", "time_to_read"):
            for q in ("p50_s", "p90_s"):
                expected[f"{key}.{name}.{q}"] = figures[name][q]
        expected[f"{key}.failures"] = ",".join(
            f"{row['error_code']}:{row['messages']}" for row in figures["failures"])
    waiting = undelivered_figures(NOW)
    expected["undelivered.messages"] = expected["summary.undelivered"] = waiting["messages"]
    for n, row in enumerate(waiting["examples"]):
        expected[f"undelivered.example.{n}"] = row["message_id"]
    for key in ("messages", "billable", "not_billable", "unstated"):
        expected[f"pricing.{key}"] = EXPECTED_PRICING[key]
    for row in EXPECTED_PRICING["categories"]:
        for key in ("messages", "billable", "not_billable"):
            expected[f"pricing.{row['category'] or '-'}.{key}"] = row[key]
    for contact, count in INBOUND.items():
        expected[f"top_contacts.{contact}"] = count
    return {name: _value(value) for name, value in expected.items()}


async def test_every_figure_of_the_page_is_the_hand_computed_one(tmp_path: Path) -> None:
    await write_lake(tmp_path / "lake", fixture_events())
    page = render_report(compute_stats(tmp_path / "lake", now=NOW))
    found = figures_of(page)
    assert {name: value for name, (value, _) in found.items()} == expected_page_figures()
    # What a reader sees: counts as numbers, times with units, rates as percentages.
    assert found["funnel.sent"][1] == "11"
    assert found["funnel.delivered_rate"][1] == "· 63.6 % of sent"
    assert found["time_to_deliver.p50_s"][1] == "4.0 s"
    assert found["time_to_read.p99_s"][1] == "9.7 min"
    assert found["accounts.globex.funnel.delivered"][1] == "2 (50.0 %)"
    assert "Message undeliverable" in page and "Re-engagement message" in page
    assert not re.search(r"https?:|<script|<link|@import|url\(", page, re.IGNORECASE)


def test_strings_from_the_lake_are_escaped() -> None:
    from sinks.stats import AccountStats, Stats, Undelivered

    evil = '<img src=x onerror="alert(1)">'
    stats = Stats(since=None, until=T0.isoformat(), events=1,
                  funnel={"sent": 1, "delivered": 0, "read": 0, "failed": 1,
                          "delivered_rate": 0.0, "read_rate": 0.0,
                          "read_of_delivered_rate": None},
                  volume=[{"hour": T0.isoformat(), "type": evil, "events": 1}],
                  failures=[{"error_code": 1, "error_title": evil, "messages": 1}],
                  accounts=[AccountStats(account=evil, funnel={
                      "sent": 1, "delivered": 0, "read": 0, "failed": 1,
                      "delivered_rate": 0.0, "read_rate": 0.0})],
                  undelivered=Undelivered(sent_before=T0.isoformat(), messages=1, examples=[
                      {"message_id": evil, "account": evil, "contact": evil,
                       "sent_at": T0.isoformat()}]),
                  top_contacts=[{"contact": evil, "messages": 1}])
    page = render_report(stats)
    assert "<img" not in page and "&lt;img src=x" in page


def _report(lake: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qikflow", "report", "--lake", str(lake), "--out", str(out),
         *args], capture_output=True, text=True, check=False)


async def test_the_command_writes_and_rewrites_the_page(tmp_path: Path) -> None:
    await write_lake(tmp_path / "lake", fixture_events())
    out = tmp_path / "out" / "report.html"
    for _ in range(2):  # the second run replaces the first page
        done = _report(tmp_path / "lake", out, "--since", "5000d")
        assert done.returncode == 0, done.stderr
        assert f"wrote {out}" in done.stdout
        page = out.read_text()
        assert page.count("<html") == 1
        assert figures_of(page)["funnel.sent"][0] == "11"
    assert sorted(path.name for path in out.parent.iterdir()) == ["report.html"]

    refused = _report(tmp_path / "lake", out, "--since", "soon")
    assert refused.returncode == 2
    assert "qikflow report: not a duration: 'soon'" in refused.stderr

    empty = _report(tmp_path / "no-lake", tmp_path / "empty.html", "--since", "7d")
    assert empty.returncode == 0, empty.stderr
    page = (tmp_path / "empty.html").read_text()
    assert "No data yet" in page and figures_of(page)["events"][0] == "0"


# -- simulated traffic, for the browser test and the docs' screenshot ------------------

ACCOUNTS = {"acme": 0.5, "globex": 0.3, "initech": 0.2}
INCOMING = {"text": 60, "image": 12, "audio": 7, "document": 6, "interactive": 8,
            "location": 4}
ERRORS = [(131026, "Message undeliverable", 6), (131047, "Re-engagement message", 3),
          (131049, "Not delivered to maintain healthy ecosystem engagement", 2),
          (130472, "User's number is part of an experiment", 1),
          (131053, "Media upload error", 1)]
CATEGORIES = [("marketing", True, 40), ("utility", True, 30), ("authentication", True, 10),
              ("service", False, 15), ("utility", False, 5)]
SIM_START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SIM_END = SIM_START + timedelta(hours=10)


def simulated_events(seed: int = 13) -> list[Event | OptOutEvent]:
    """About 860 events of ten busy hours: three accounts, incoming messages of six types,
    outbound messages with log-normal delivery and read times, stuck and failed ones."""
    rng = random.Random(seed)
    contacts = [f"+9198{rng.randrange(10**8):08d}" for _ in range(80)]
    events: list[Event | OptOutEvent] = []
    for n in range(360):
        # Busier towards midday: more events around hour 5 of 10.
        at = SIM_START + timedelta(seconds=min(rng.triangular(0, 36000, 16000), 35999))
        account = rng.choices(list(ACCOUNTS), weights=list(ACCOUNTS.values()))[0]
        contact = rng.choice(contacts)
        kind = rng.choices(list(INCOMING), weights=list(INCOMING.values()))[0]
        events.append(_incoming(f"in{n}", kind, account, contact, at))
        if rng.random() < 0.55:
            events += _outbound(rng, f"out{n}", account, contact, at + timedelta(seconds=40))
    return events


def _incoming(message_id: str, kind: str, account: str, contact: str, at: datetime) -> Event:
    content = {
        "text": TextContent(body="Is my order shipped?"),
        "interactive": InteractiveContent(reply_type="button_reply", title="Track order"),
        "location": LocationContent(latitude=12.97, longitude=77.59),
    }.get(kind, MediaContent(media_id=f"media-{message_id}", mime_type="application/pdf"))
    return Event(event_id=message_id, type=f"message.{kind}", kind="message", format="qikchat",
                 receipt_ids=[f"r-{message_id}"], received_at=at + timedelta(seconds=1),
                 occurred_at=at, source="qikchat", account=account,
                 business_number="+911140000000", contact_number=contact, contact_name=None,
                 message_id=message_id, content=content, raw={"id": message_id})


def _outbound(rng: random.Random, message_id: str, account: str, contact: str,
              sent: datetime) -> list[Event]:
    category, billable, _ = rng.choices(CATEGORIES, weights=[c[2] for c in CATEGORIES])[0]
    pricing = Pricing(billable=billable, pricing_model="PMP", category=category,
                      type="regular" if billable else "free_customer_service")
    times = {"sent": sent}
    fate = rng.random()
    if fate < 0.06:
        code, title, _ = rng.choices(ERRORS, weights=[e[2] for e in ERRORS])[0]
        times["failed"] = sent + timedelta(seconds=rng.uniform(1, 30))
        return [_status(message_id, state, at, account, contact, None, (code, title))
                for state, at in times.items()]
    if fate > 0.03 + 0.06:  # else: never delivered
        times["delivered"] = sent + timedelta(seconds=rng.lognormvariate(1.2, 1.6))
        if rng.random() < 0.7:
            times["read"] = times["delivered"] + timedelta(
                seconds=rng.lognormvariate(4.5, 1.8))
    return [_status(message_id, state, at, account, contact,
                    pricing if state != "read" else None, None)
            for state, at in times.items()]


def _status(message_id: str, state: str, at: datetime, account: str, contact: str,
            pricing: Pricing | None, error: tuple[int, str] | None) -> Event:
    return Event(event_id=f"{message_id}:{state}", type=f"status.{state}", kind="status",
                 format="meta", receipt_ids=[f"r-{message_id}-{state}"],
                 received_at=at + timedelta(seconds=1), occurred_at=at, source="qikchat",
                 account=account, business_number="+911140000000", contact_number=contact,
                 contact_name=None, message_id=message_id,
                 content=StatusContent(status=state, pricing=pricing,
                                       error_code=error[0] if error else None,
                                       error_title=error[1] if error else None),
                 raw={"id": message_id, "status": state})


async def test_the_page_renders_in_chromium_without_network_or_errors(tmp_path: Path) -> None:
    await write_lake(tmp_path / "lake", simulated_events())
    out = tmp_path / "report.html"
    write_report(compute_stats(tmp_path / "lake", timedelta(days=7), now=SIM_END), out)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            problems: list[str] = []
            requests: list[str] = []
            page.on("console", lambda message: problems.append(message.text)
                    if message.type in ("error", "warning") else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            await page.goto(out.as_uri())
            charts = page.locator("svg.chart")
            assert await charts.count() == 5  # funnel, volume, two histograms, failures
            for n in range(5):
                box = await charts.nth(n).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100, n
            assert await page.locator("svg.chart rect").count() > 50
            assert problems == []
            assert requests == [out.as_uri()]
            IMAGES.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=IMAGES / "report.png", full_page=True)
        finally:
            await browser.close()
