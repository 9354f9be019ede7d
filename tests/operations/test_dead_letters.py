"""Dead letters on the real broker: pages by offsets, filters, picks, and a huge topic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qikflow.config import KafkaSettings
from qikflow.console.settings import ConsoleSettings
from qikflow.operations.dead_letters import (
    DeadLetter,
    DeadLetterFilter,
    decode_cursor,
    each_match,
    encode_cursor,
    picked,
    read_page,
)
from qikflow.operations.errors import BadInputError, UnknownIdError
from qikflow.operations.times import TimeRange
from qikflow.topics import Topics
from tests.operations._letters import create, letter_headers, pipeline, produce, raw_record

DEFAULTS = ConsoleSettings()


async def _fill_dlq(count: int, *, base_ms: int) -> None:
    """`count` router dead letters, one a second from `base_ms`, over 3 partitions; every
    third is `undeliverable`, the rest `undecodable`; accounts alternate."""
    kafka = KafkaSettings()
    dlq = Topics.from_settings(kafka).dlq
    await create(kafka, dlq)
    for partition in range(3):
        indexes = list(range(partition, count, 3))
        records = []
        for i in indexes:
            record = raw_record(b"not json %d" % i, account="acme" if i % 2 else "globex",
                                at_ms=base_ms + i * 1000)
            reason = "undeliverable" if i % 3 == 0 else "undecodable"
            records.append((None, record.body, letter_headers(record, reason=reason,
                                                              agent="router")))
        await produce(kafka, dlq, records, partition=partition,
                      timestamps_ms=[base_ms + i * 1000 for i in indexes])


async def _all_pages(tmp_path: Path, selection: DeadLetterFilter) -> list[list[DeadLetter]]:
    pages: list[list[DeadLetter]] = []
    cursor = None
    while True:
        page = await read_page(pipeline(tmp_path), "dlq", selection, cursor=cursor,
                               size=DEFAULTS.page_size, scan_limit=DEFAULTS.page_scan_records)
        pages.append(page.letters)
        if page.cursor is None:
            return pages
        cursor = decode_cursor(encode_cursor(page.cursor))


async def test_pages_of_the_default_size_cover_every_letter_once_in_time_order(
        topic_prefix: str, tmp_path: Path) -> None:
    base_ms = int(time.time() * 1000) - 3_600_000
    await _fill_dlq(120, base_ms=base_ms)
    pages = await _all_pages(tmp_path, DeadLetterFilter())
    assert [len(page) for page in pages] == [50, 50, 20]
    letters = [letter for page in pages for letter in page]
    assert len({letter.ref for letter in letters}) == 120
    assert [letter.timestamp_ms for letter in letters] == [base_ms + i * 1000 for i in range(120)]
    first = letters[0]
    assert (first.source, first.failed_by, first.is_raw) == ("dlq", "router", True)
    assert first.value == b"not json 0" and first.reason == "undeliverable"
    assert first.receipt_id and first.received_at_ms == base_ms


async def test_filters_by_reason_type_account_and_time(topic_prefix: str, tmp_path: Path
                                                       ) -> None:
    base_ms = int(time.time() * 1000) - 3_600_000
    await _fill_dlq(30, base_ms=base_ms)

    async def matching(selection: DeadLetterFilter) -> list[int]:
        pages = await _all_pages(tmp_path, selection)
        return sorted((letter.timestamp_ms - base_ms) // 1000 for page in pages for letter in page)

    assert await matching(DeadLetterFilter(reason="UNDELIVER")) == list(range(0, 30, 3))
    assert await matching(DeadLetterFilter(account="acme")) == list(range(1, 30, 2))
    assert await matching(DeadLetterFilter(type="message.*")) == []
    from datetime import UTC, datetime
    since = datetime.fromtimestamp((base_ms + 10_000) / 1000, UTC)
    until = datetime.fromtimestamp((base_ms + 12_000) / 1000, UTC)
    assert await matching(DeadLetterFilter(times=TimeRange(since, until))) == [10, 11, 12]
    assert await matching(DeadLetterFilter(reason="undecodable", account="globex",
                                           times=TimeRange(since, until))) == [10]
    assert await matching(DeadLetterFilter(reason="no such reason")) == []


async def test_a_huge_topic_is_read_a_window_at_a_time(topic_prefix: str, tmp_path: Path
                                                       ) -> None:
    """25,000 letters, 3 of them rare: a page reads about `page_scan_records` (its default)
    and hands on a cursor; the pages after it find the rare ones."""
    kafka = KafkaSettings()
    dlq = Topics.from_settings(kafka).dlq
    await create(kafka, dlq)
    common = raw_record(b"{}")
    headers = letter_headers(common, reason="undecodable", agent="router")
    rare = letter_headers(common, reason="rare", agent="router")
    total = 25_000
    await produce(kafka, dlq, [(None, b"x", rare if i >= total - 3 else headers)
                               for i in range(total)], partition=0)
    selection = DeadLetterFilter(reason="rare")
    first = await read_page(pipeline(tmp_path), "dlq", selection, cursor=None,
                            size=DEFAULTS.page_size, scan_limit=DEFAULTS.page_scan_records)
    assert first.letters == [] and first.cursor is not None and first.held == total
    # One fetch past the limit at most, never the topic.
    assert DEFAULTS.page_scan_records <= first.scanned < DEFAULTS.page_scan_records + 1000
    pages = await _all_pages(tmp_path, selection)
    assert sum(len(page) for page in pages) == 3
    seen: list[tuple[int, int]] = []
    found = [letter async for batch in each_match(
        pipeline(tmp_path), "dlq", selection, progress=lambda done, all_: seen.append(
            (done, all_))) for letter in batch]
    assert [letter.offset for letter in found] == [total - 3, total - 2, total - 1]
    assert seen[-1] == (total, total) and len(seen) > 1


async def test_picked_letters_by_ref(topic_prefix: str, tmp_path: Path) -> None:
    await _fill_dlq(6, base_ms=int(time.time() * 1000) - 60_000)
    page = await read_page(pipeline(tmp_path), "dlq", DeadLetterFilter(), cursor=None,
                           size=DEFAULTS.page_size, scan_limit=DEFAULTS.page_scan_records)
    refs = [page.letters[4].ref, page.letters[1].ref]
    assert [letter.ref for letter in await picked(pipeline(tmp_path), refs)] == refs
    with pytest.raises(UnknownIdError, match="no dead letter at dlq:0:999"):
        await picked(pipeline(tmp_path), ["dlq:0:999"])
    with pytest.raises(BadInputError, match="names no dead letter"):
        await picked(pipeline(tmp_path), ["dlq:zero:1"])


@pytest.mark.parametrize("text", ["0:1,x", "a:b", "1"])
def test_a_malformed_cursor_is_refused(text: str) -> None:
    with pytest.raises(BadInputError, match="is not `partition:offset"):
        decode_cursor(text)


async def test_an_unknown_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown dead-letter source 'spam'"):
        await read_page(pipeline(tmp_path), "spam", DeadLetterFilter(), cursor=None, size=1,
                        scan_limit=1)


def test_the_stage_that_dead_lettered_each_kind() -> None:
    def letter(source: str, headers: list[tuple[str, bytes]]) -> DeadLetter:
        return DeadLetter(source, f"t.{source}", 0, 0, 0, None, b"{}", headers)

    assert letter("unknown", []).failed_by == "router"  # the router sends to unknown
    assert letter("dlq", [("qikflow-failed-agent", b"dedup")]).failed_by == "dedup"
    assert letter("sink.dlq", [("qikflow-failed-sink", b"postgres")]).failed_by == \
        "sink:postgres"
    assert letter("quarantine", []).failed_by == "ingest"
