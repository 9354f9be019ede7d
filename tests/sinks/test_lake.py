"""LakeSink: staged rows survive restarts, roll into whole Parquet files, compact, recover."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from sinks._lake_store import STAGED_COLUMNS, LakeStore
from sinks.base import PoisonRecordError, SinkRecord
from sinks.lake import LakeSink
from streams.events import Event, OptOutEvent
from streams.notices import NoticeEvent
from streams.parsers import Parsed
from tests.sinks.events import T0, optout, status, text_message
from tests.sinks.harness import duck
from tests.streams.fixtures import events as fixture_events
from tests.streams.fixtures import parse

NEVER_S = 10**9


def records(events: Sequence[Event | OptOutEvent | NoticeEvent]) -> list[SinkRecord]:
    return [SinkRecord("test", 0, offset, event) for offset, event in enumerate(events)]


def fixture_notices(name: str) -> list[NoticeEvent]:
    outcome = parse(name)
    assert isinstance(outcome, Parsed)
    return outcome.notices


def lake(root: Path, *, roll_bytes: int = NEVER_S, roll_interval_s: float = NEVER_S,
         compact_interval_s: float = NEVER_S) -> LakeSink:
    return LakeSink(root, roll_bytes=roll_bytes, roll_interval_s=roll_interval_s,
                    compact_min_files=1000, compact_interval_s=compact_interval_s)


def visible(root: Path) -> list[tuple[str, str, int]]:
    """(type, date, events) as a reader of the lake sees them."""
    if not list(root.glob("type=*/date=*/*.parquet")):
        return []
    rows = duck(
        f"SELECT type, CAST(date AS VARCHAR), count(*) FROM read_parquet("
        f"'{root}/type=*/date=*/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    )
    return [(str(kind), str(day), int(n)) for kind, day, n in rows]


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.glob("type=*/date=*/*.parquet"))


async def test_staged_events_survive_a_restart_and_roll_into_partitions(tmp_path: Path) -> None:
    events: list[Event | OptOutEvent] = [
        text_message(f"in-{n}", at=T0 + timedelta(hours=n * 12)) for n in range(3)]
    events += [status("out-1", "read"), optout("in-0", "+919800000001")]
    first = lake(tmp_path)
    await first.setup()
    await first.write(records(events))
    await first.maintain()
    await first.close()
    assert visible(tmp_path) == []  # staged, not rolled: too small and too young

    second = lake(tmp_path, roll_interval_s=0.0)
    await second.setup()
    await second.maintain()
    await second.close()
    assert visible(tmp_path) == [
        ("contact.optout", "2025-03-01", 1),
        ("message.text", "2025-03-01", 2),
        ("message.text", "2025-03-02", 1),
        ("status.read", "2025-03-01", 1),
    ]
    assert not list(tmp_path.rglob("*.tmp"))


async def test_partitions_roll_by_size_into_few_files(tmp_path: Path) -> None:
    sink = lake(tmp_path, roll_bytes=100_000)
    await sink.setup()
    for batch in range(20):
        await sink.write(records([text_message(f"m-{batch}-{n}", body="x" * 200)
                                  for n in range(50)]))
        await sink.maintain()
    rolled_by_size = len(parquet_files(tmp_path))
    await sink.close()
    rest = lake(tmp_path, roll_interval_s=0.0)
    await rest.setup()
    await rest.maintain()
    await rest.close()
    # 1000 events of ~650 staged bytes in 20 batches, rolled at 100 kB: files hold several
    # batches each.
    assert 2 <= rolled_by_size < 10
    assert len(parquet_files(tmp_path)) <= rolled_by_size + 1
    assert visible(tmp_path) == [("message.text", "2025-03-01", 1000)]


async def test_small_files_are_compacted_without_duplicates(tmp_path: Path) -> None:
    sink = lake(tmp_path, roll_interval_s=0.0)
    await sink.setup()
    for n in range(6):
        # Each write repeats the previous event, as a redelivery after a restart would.
        await sink.write(records([text_message(f"m-{n}"), text_message(f"m-{max(n - 1, 0)}")]))
        await sink.maintain()
    assert len(parquet_files(tmp_path)) == 6
    merged = sink.compact()  # a past day: two small files are enough
    await sink.close()
    assert merged == 6
    assert len(parquet_files(tmp_path)) == 1
    assert visible(tmp_path) == [("message.text", "2025-03-01", 6)]


async def test_recovery_finishes_a_recorded_rename_and_drops_unrecorded_temp_files(
    tmp_path: Path,
) -> None:
    store = LakeStore(tmp_path)
    store.open()
    folder = tmp_path / "type=message.text" / "date=2025-03-01"
    folder.mkdir(parents=True)
    # A crash after the staging transaction but before the rename ...
    duck(f"COPY (SELECT 'e-1' AS event_id) TO '{folder}/.part-a.parquet.tmp' "
     "(FORMAT parquet)")
    store.db.execute("INSERT INTO renames VALUES (?, ?)",
                     [str(folder / ".part-a.parquet.tmp"), str(folder / "part-a.parquet")])
    # ... and one before it: the rows of that file are still staged.
    (folder / ".part-b.parquet.tmp").write_bytes(b"half a file")
    store.recover()
    store.close()
    assert [path.name for path in folder.iterdir()] == ["part-a.parquet"]


async def test_values_the_columns_cannot_hold_are_poison_not_an_outage(tmp_path: Path) -> None:
    sink = lake(tmp_path)
    await sink.setup()
    try:
        # A code of ten digits fits (BIGINT); one beyond 64 bits is that record's problem.
        await sink.write(records([status("big", "failed", error_code=9_999_999_999)]))
        with pytest.raises(PoisonRecordError, match="nothing of it was staged"):
            await sink.write(records([status("huge", "failed", error_code=2**70)]))
        await sink.write(records([text_message("nul", body="stop\x00now")]))
    finally:
        await sink.close()
    rows = duck(f"SELECT event_id, error_code, text FROM read_parquet("
                f"'{tmp_path}/type=*/date=*/*.parquet') ORDER BY ALL") if parquet_files(
                    tmp_path) else []
    assert rows == []  # still staged: nothing rolled yet
    store = LakeStore(tmp_path)
    store.open()
    try:
        staged = store.db.execute(
            "SELECT event_id, error_code, text FROM staged ORDER BY event_id").fetchall()
    finally:
        store.close()
    # The lake keeps the exact text, NUL included.
    assert staged == [("big:failed", 9_999_999_999, None), ("nul", None, "stop\x00now")]


async def test_stray_folders_and_unreadable_files_are_skipped_not_fatal(tmp_path: Path) -> None:
    garbage = tmp_path / "type=message.text" / "date=garbage"
    garbage.mkdir(parents=True)
    (garbage / "part-x.parquet").write_bytes(b"not parquet")
    broken_day = tmp_path / "type=message.text" / "2025-03-01"
    broken_day.mkdir()
    corrupt = tmp_path / "type=status.read" / "date=2020-01-01"
    corrupt.mkdir(parents=True)
    for n in range(2):
        (corrupt / f"part-{n}.parquet").write_bytes(b"PAR1 truncated")
    sink = LakeSink(tmp_path, roll_bytes=NEVER_S, roll_interval_s=0, compact_min_files=2,
                    compact_interval_s=0)
    await sink.setup()
    try:
        await sink.write(records([text_message("after-1")]))
        await sink.maintain()  # rolls, then compacts: skips what it cannot read
        await sink.maintain()
    finally:
        await sink.close()
    assert sorted(p.name for p in corrupt.iterdir()) == ["part-0.parquet", "part-1.parquet"]
    assert [row[2] for row in visible_one(tmp_path, "message.text")] == [1]


def visible_one(root: Path, event_type: str) -> list[tuple[str, str, int]]:
    rows = duck(
        f"SELECT type, CAST(date AS VARCHAR), count(*) FROM read_parquet("
        f"'{root}/type={event_type}/date=2*/*.parquet', hive_partitioning = true) "
        "GROUP BY ALL")
    return [(str(kind), str(day), int(n)) for kind, day, n in rows]


async def test_a_staging_file_of_an_earlier_version_is_widened_and_kept(tmp_path: Path) -> None:
    staging = tmp_path / "_staging" / "lake.duckdb"
    staging.parent.mkdir(parents=True)
    with duckdb.connect(str(staging)) as db:
        columns = ", ".join(f"{name} {'INTEGER' if name == 'error_code' else kind}"
                            for name, kind in STAGED_COLUMNS.items())
        db.execute(f"CREATE TABLE staged ({columns}, staged_s DOUBLE)")
    sink = lake(tmp_path)
    await sink.setup()
    try:
        await sink.write(records([status("big", "failed", error_code=9_999_999_999)]))
    finally:
        await sink.close()
    with duckdb.connect(str(staging)) as db:
        assert db.execute("SELECT error_code FROM staged").fetchall() == [(9_999_999_999,)]


async def test_a_value_duckdb_refuses_is_poison_and_the_staging_file_stays_usable(
    tmp_path: Path,
) -> None:
    sink = lake(tmp_path)
    await sink.setup()
    try:
        row: dict[str, list[object]] = {name: [None] for name in STAGED_COLUMNS}
        row.update(type=["status.failed"], date=[T0.date()], event_id=["e"], bytes=[1],
                   error_code=[2**70])
        with pytest.raises(PoisonRecordError, match="ConversionException"):
            await sink._run("staging", sink._store.stage, row, 0.0)
        await sink.write(records([status("next", "read")]))
    finally:
        await sink.close()


EARLIER_COLUMNS = ("context_message_id", "referral_source_id", "ctwa_clid")


async def test_a_staging_file_without_the_reply_and_referral_columns_gets_them(
    tmp_path: Path,
) -> None:
    staging = tmp_path / "_staging" / "lake.duckdb"
    staging.parent.mkdir(parents=True)
    with duckdb.connect(str(staging)) as db:
        columns = ", ".join(f"{name} {kind}" for name, kind in STAGED_COLUMNS.items()
                            if name not in EARLIER_COLUMNS)
        db.execute(f"CREATE TABLE staged ({columns}, staged_s DOUBLE)")
    (reply,) = [e for e in fixture_events("meta-context-referral") if e.referral]
    sink = lake(tmp_path, roll_interval_s=0.0)
    await sink.setup()
    try:
        await sink.write(records([reply]))
        await sink.maintain()
    finally:
        await sink.close()
    rows = duck(f"SELECT context_message_id, referral_source_id, ctwa_clid FROM read_parquet("
                f"'{tmp_path}/type=*/date=*/*.parquet', union_by_name = true)")
    assert reply.referral is not None
    assert rows == [("wamid.META.CATALOG1", "120210000000001", reply.referral.ctwa_clid)]


async def test_files_of_before_and_after_the_new_columns_compact_together(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "type=message.text" / f"date={T0.date().isoformat()}"
    folder.mkdir(parents=True)
    duck(f"COPY (SELECT 'old-1' AS event_id, TIMESTAMPTZ '2025-03-01 09:00:00+00' AS "
         f"received_at) TO '{folder}/part-old.parquet' (FORMAT parquet)")
    (reply,) = [e for e in fixture_events("meta-context-referral") if e.referral]
    sink = LakeSink(tmp_path, roll_bytes=NEVER_S, roll_interval_s=0.0,
                    compact_min_files=2, compact_interval_s=0.0)
    await sink.setup()
    try:
        await sink.write(records([reply.model_copy(update={"received_at": T0})]))
        await sink.maintain()
        await sink.maintain()
    finally:
        await sink.close()
    files = parquet_files(tmp_path)
    assert len(files) == 1
    rows = duck(f"SELECT event_id, referral_source_id FROM read_parquet('{files[0]}') "
                "ORDER BY event_id")
    assert rows == [("old-1", None), ("wamid.META.AD1", "120210000000001")]


async def test_notices_are_rows_of_their_type(tmp_path: Path) -> None:
    notices = [n for name in ("meta-template-rejected", "meta-call-terminate", "meta-echo",
                              "meta-user-preferences")
               for n in fixture_notices(name)]
    sink = lake(tmp_path, roll_interval_s=0.0)
    await sink.setup()
    try:
        await sink.write(records(notices))
        await sink.maintain()
    finally:
        await sink.close()
    rows = duck(f"SELECT type, kind, message_id, status, text, error_code FROM read_parquet("
                f"'{tmp_path}/type=*/date=*/*.parquet', hive_partitioning = true, "
                "union_by_name = true) ORDER BY type, message_id, status")
    assert rows == [
        ("call.terminate", "notice", "wacid.META.CALL3", "completed", "BUSINESS_INITIATED",
         None),
        ("contact.preferences", "notice", None, "resume", "marketing_messages", None),
        ("contact.preferences", "notice", None, "stop", "marketing_messages", None),
        ("message.echo", "notice", "wamid.META.ECHO1", None, "Your order ships today", None),
        ("message.echo", "notice", "wamid.META.ECHO2", None, "Invoice", None),
        ("provider.error", "notice", None, None, "Call failed", 138006),
        ("template.status", "notice", "1689556908129835", "REJECTED", "diwali_sale", None),
    ]


async def test_identity_group_and_edited_message_columns(tmp_path: Path) -> None:
    stored: list[Event | NoticeEvent] = [
        *fixture_events("meta-identity"), *fixture_events("meta-group"),
        *fixture_events("meta-edit-revoke"), *fixture_notices("meta-echo")]
    sink = lake(tmp_path, roll_interval_s=0.0)
    await sink.setup()
    try:
        await sink.write(records(stored))
        await sink.maintain()
    finally:
        await sink.close()
    rows = duck(f"SELECT event_id, phone_number_id, business_account_id, contact_user_id, "
                f"group_id, original_message_id FROM read_parquet("
                f"'{tmp_path}/type=*/date=*/*.parquet', union_by_name = true) "
                "WHERE event_id LIKE 'wamid.META.%' ORDER BY event_id")
    ids = ("410987654321098", "305812345678901")
    group = "Y2FwaV9ncm91cDo5MTgwNDEyMzQ1Njc6MTIwMzYz"
    assert rows == [
        ("wamid.META.EDIT1", *ids, "IN.7788", None, "wamid.META.ORIG1"),
        ("wamid.META.EDIT2", *ids, "IN.7788", None, "wamid.META.ORIG2"),
        ("wamid.META.GOUT1:read:919833334444", *ids, None, group, None),
        ("wamid.META.GOUT1:read:IN.2200110033", *ids, None, group, None),
        ("wamid.META.GRP1", *ids, "IN.2200110033", group, None),
        ("wamid.META.ID1", *ids, "IN.1873309224915530", None, None),
        ("wamid.META.OUT9:delivered", *ids, "IN.1873309224915530", None, None),
        ("wamid.META.REV1", *ids, "IN.7788", None, "wamid.META.ORIG3"),
    ]
    notices = duck(f"SELECT count(*) FROM read_parquet('{tmp_path}/type=*/date=*/*.parquet', "
                   "union_by_name = true) WHERE kind = 'notice' AND phone_number_id IS NOT NULL")
    assert notices == [(2,)]
