"""Tests of ingest/spool.py: durability, ownership, adoption, the hard limit, disk space."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import SpoolFullError, SpoolUnavailableError, SpoolUnreadableError
from ingest.record import RawRecord, new_receipt_id
from ingest.settings import IngestSettings
from ingest.spool import Spool, SpooledRecord
from ingest.spool_file import encode_meta, stored_size, summarize


def record(body: bytes, content_type: str = "") -> RawRecord:
    return RawRecord(body=body, receipt_id=new_receipt_id(), received_at_ms=1, account="a",
                     content_type=content_type)


def records_of(entries: list[SpooledRecord]) -> list[RawRecord | None]:
    return [entry.record for entry in entries]


def on_disk(path: Path) -> int:
    return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal")
               if Path(f"{path}{s}").exists())


async def test_put_peek_remove(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000)
    records = [record(f"body-{i}".encode()) for i in range(5)]
    for item in records:
        await spool.put(item)
    sizes = [stored_size(r.receipt_id, encode_meta(r), r.body) for r in records]
    assert (spool.depth, spool.bytes) == (5, sum(sizes))
    entries = await spool.peek(3)
    assert records_of(entries) == records[:3]
    await spool.remove(entries)
    assert records_of(await spool.peek(10)) == records[3:]
    assert (spool.depth, spool.bytes) == (2, sum(sizes[3:]))
    await spool.close()


async def test_concurrent_puts_share_commits_and_all_land(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000_000)
    records = [record(os.urandom(100)) for _ in range(300)]
    await asyncio.gather(*(spool.put(r) for r in records))
    stored = await spool.peek(1000)
    assert sorted(e.receipt_id for e in stored) == sorted(r.receipt_id for r in records)
    await spool.close()


async def test_empty_spool_file_is_deleted_on_close(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    path = spool.path
    await spool.close()
    assert not path.exists()
    assert not list(tmp_path.iterdir())


async def test_non_empty_spool_survives_close_and_is_adopted(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    kept = record(b"keep me")
    await spool.put(kept)
    await spool.close()
    assert spool.path.exists()
    summary = summarize(spool.path)
    assert (summary.in_use, summary.depth, summary.oldest_ms) == (False, 1, 1)
    adopted = Spool.adopt(spool.path, max_bytes=1000)
    assert adopted is not None
    assert summarize(spool.path).in_use
    assert records_of(await adopted.peek(10)) == [kept]
    assert adopted.oldest_ms == kept.received_at_ms
    await adopted.close()


async def test_live_owner_blocks_adoption(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    assert Spool.adopt(spool.path, max_bytes=1000) is None
    with pytest.raises(SpoolUnavailableError, match="locked by another live process"):
        Spool.create(tmp_path, max_bytes=1000)
    await spool.close()


def test_spool_of_a_killed_process_is_adoptable(tmp_path: Path) -> None:
    # A child process spools one body and is SIGKILLed: its lock dies with it.
    script = (
        "import asyncio, os, signal, sys\n"
        "from pathlib import Path\n"
        "from ingest.spool import Spool\n"
        "from ingest.record import RawRecord\n"
        "async def main():\n"
        "    s = Spool.create(Path(sys.argv[1]), 1000)\n"
        "    await s.put(RawRecord(b'orphan', 'r1', 1))\n"
        "    print(s.path, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == -9
    path = Path(result.stdout.strip())

    async def adopt() -> list[bytes]:
        adopted = Spool.adopt(path, max_bytes=1000)
        assert adopted is not None
        bodies = [e.body for e in await adopted.peek(10)]
        await adopted.close()
        return bodies

    assert asyncio.run(adopt()) == [b"orphan"]


async def test_full_spool_refuses_and_keeps_what_it_had(tmp_path: Path) -> None:
    first = record(b"12345678")
    spool = Spool.create(tmp_path, max_bytes=stored_size(first.receipt_id,
                                                         encode_meta(first), first.body))
    await spool.put(first)
    with pytest.raises(SpoolFullError, match="QIKFLOW_SPOOL_MAX_BYTES"):
        await spool.put(record(b"x"))
    assert spool.depth == 1
    assert not spool.writable()
    await spool.close()


async def test_the_limit_holds_under_concurrency(tmp_path: Path) -> None:
    limit = 2_000_000
    spool = Spool.create(tmp_path, max_bytes=limit)
    results = await asyncio.gather(*(spool.put(record(os.urandom(50_000))) for _ in range(80)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, SpoolFullError)]
    assert len(refused) + sum(r is None for r in results) == 80
    assert 0 < len(refused) < 80
    stored = await spool.peek(1000)
    assert len(stored) == spool.depth == 80 - len(refused)
    assert spool.bytes == sum(e.stored_bytes for e in stored) <= limit
    assert os.path.getsize(spool.path) < limit * 1.1  # SQLite pages on top of the bytes
    await spool.close()


async def test_the_limit_counts_headers_not_only_bodies(tmp_path: Path) -> None:
    # 22-byte bodies with 200 KB content types (records made without the caps of
    # RawRecord.received, as an older version stored them).
    spool = Spool.create(tmp_path, max_bytes=1_000_000)
    results = await asyncio.gather(
        *(spool.put(record(b"x" * 22, "t/" + "p" * 200_000)) for _ in range(40)),
        return_exceptions=True)
    kept = sum(r is None for r in results)
    assert kept == 4
    assert spool.bytes > kept * 200_000
    await spool.close()


async def test_the_default_limit_is_one_gib_and_hard(tmp_path: Path) -> None:
    limit = IngestSettings().spool_max_bytes
    assert limit == 1024 ** 3
    spool = Spool.create(tmp_path, max_bytes=limit)
    big = record(os.urandom(1024 * 1024))
    size = stored_size(big.receipt_id, encode_meta(big), big.body)
    # Stand in for 1 GiB already stored less room for one body (a test cannot write 1 GiB).
    spool.bytes = limit - size
    await spool.put(big)
    with pytest.raises(SpoolFullError):
        await spool.put(record(b"x"))
    spool.bytes -= limit - size
    await spool.remove(await spool.peek(10))
    await spool.close()


async def test_disk_space_is_given_back_after_draining(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=100_000_000)
    await asyncio.gather(*(spool.put(record(os.urandom(100_000))) for _ in range(200)))
    full = on_disk(spool.path)
    assert full > 20_000_000
    # Half drained: the freed pages go back once 8 MiB are free.
    await spool.remove(await spool.peek(100))
    assert on_disk(spool.path) < full * 0.6
    # All drained: a few pages are left.
    await spool.remove(await spool.peek(1000))
    assert spool.depth == spool.bytes == 0
    assert on_disk(spool.path) < 100_000
    await spool.close()


async def test_unwritable_disk_is_reported(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000)
    # Make the database refuse writes the way a failing disk would: read-only mode.
    spool._db.execute("PRAGMA query_only=ON")
    with pytest.raises(SpoolUnavailableError, match="not stored"):
        await spool.put(record(b"x"))
    assert spool.depth == spool.bytes == 0
    spool._db.execute("PRAGMA query_only=OFF")
    await spool.put(record(b"x"))  # the failed write gave its reservation back
    await spool.remove(await spool.peek(1))
    await spool.close()


async def test_a_closed_spool_refuses_puts(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000)
    await spool.close()
    with pytest.raises(SpoolUnavailableError, match="closed"):
        await spool.put(record(b"x"))


@pytest.mark.parametrize("content", [b"junk" * 100, b""])
def test_a_file_that_is_no_spool_is_renamed_aside(tmp_path: Path, content: bytes) -> None:
    junk = tmp_path / "spool-junk-1.sqlite"
    junk.write_bytes(content)
    if not content:
        # A real SQLite database, but not a spool: a table of another shape.
        db = sqlite3.connect(junk)
        db.execute("CREATE TABLE spool (id INTEGER PRIMARY KEY, other TEXT)")
        db.commit()
        db.close()
    with pytest.raises(SpoolUnreadableError):
        summarize(junk)
    with pytest.raises(SpoolUnreadableError, match="renamed to unreadable-") as refused:
        Spool.adopt(junk, max_bytes=1000)
    assert ("file is not a database" if content else "no such column") in str(refused.value)
    if not content:
        with contextlib.closing(sqlite3.connect(next(tmp_path.glob("unreadable-*")))) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # untouched
    (aside,) = tmp_path.glob("unreadable-spool-junk-1.sqlite-*")
    assert not junk.exists()
    assert content in aside.read_bytes()
    assert not list(tmp_path.glob("*.lock"))


async def test_a_spool_that_breaks_while_open_is_set_aside(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    await spool.put(record(b"x"))
    other = sqlite3.connect(spool.path)
    other.execute("DROP TABLE spool")
    other.commit()
    other.close()
    with pytest.raises(SpoolUnreadableError, match="cannot be read"):
        await spool.peek(10)
    aside = await spool.set_aside()
    assert aside.name.startswith(f"unreadable-{spool.path.name}-")
    assert aside.exists() and not spool.path.exists()
    assert not list(tmp_path.glob("*.lock"))
    with pytest.raises(SpoolUnavailableError):
        await spool.put(record(b"y"))


async def test_an_entry_with_unreadable_headers_still_gives_its_body(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000)
    await spool.put(record(b"fine"))
    spool._db.execute("INSERT INTO spool (receipt_id, meta, body) VALUES ('r2', x'00ff', x'62')")
    entries = await spool.peek(10)
    assert [(e.receipt_id, e.body, e.record is None) for e in entries[1:]] == [
        ("r2", b"b", True)]
    await spool.close()


def test_own_file_name_is_host_and_pid(tmp_path: Path) -> None:
    async def name() -> str:
        spool = Spool.create(tmp_path, max_bytes=10)
        await spool.close()
        return spool.path.name

    assert asyncio.run(name()) == f"spool-{socket.gethostname()}-{os.getpid()}.sqlite"
