"""LakeSink: staged rows survive restarts, roll into whole Parquet files, compact, recover."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sinks._lake_store import LakeStore
from sinks.base import SinkRecord
from sinks.lake import LakeSink
from streams.events import Event, OptOutEvent
from tests.sinks.events import T0, optout, status, text_message
from tests.sinks.harness import duck

NEVER_S = 10**9


def records(events: list[Event | OptOutEvent]) -> list[SinkRecord]:
    return [SinkRecord("test", 0, offset, event) for offset, event in enumerate(events)]


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
