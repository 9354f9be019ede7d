"""Tests of ingest/spool.py: durability, ownership, adoption and limits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import SpoolFullError, SpoolUnavailableError
from ingest.record import RawRecord, new_receipt_id
from ingest.spool import Spool


def record(body: bytes) -> RawRecord:
    return RawRecord(body=body, receipt_id=new_receipt_id(), received_at_ms=1, account="a")


async def test_put_peek_remove(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000)
    records = [record(f"body-{i}".encode()) for i in range(5)]
    for item in records:
        await spool.put(item)
    assert (spool.depth, spool.bytes) == (5, sum(len(r.body) for r in records))
    entries = await spool.peek(3)
    assert [e.record for e in entries] == records[:3]
    await spool.remove(entries)
    assert [e.record for e in await spool.peek(10)] == records[3:]
    assert spool.depth == 2
    await spool.close()


async def test_concurrent_puts_share_commits_and_all_land(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000_000)
    records = [record(os.urandom(100)) for _ in range(300)]
    await asyncio.gather(*(spool.put(r) for r in records))
    stored = await spool.peek(1000)
    assert sorted(e.record.receipt_id for e in stored) == sorted(r.receipt_id for r in records)
    await spool.close()


async def test_empty_spool_file_is_deleted_on_close(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    path = spool.path
    await spool.close()
    assert not path.exists()


async def test_non_empty_spool_survives_close_and_is_adopted(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    kept = record(b"keep me")
    await spool.put(kept)
    await spool.close()
    assert spool.path.exists()
    adopted = Spool.adopt(spool.path, max_bytes=1000)
    assert adopted is not None
    assert [e.record for e in await adopted.peek(10)] == [kept]
    await adopted.close()


async def test_live_owner_blocks_adoption(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=1000)
    assert Spool.adopt(spool.path, max_bytes=1000) is None
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
        bodies = [e.record.body for e in await adopted.peek(10)]
        await adopted.close()
        return bodies

    assert asyncio.run(adopt()) == [b"orphan"]


async def test_full_spool_refuses_and_keeps_what_it_had(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10)
    await spool.put(record(b"12345678"))
    with pytest.raises(SpoolFullError, match="QIKFLOW_SPOOL_MAX_BYTES"):
        await spool.put(record(b"too much"))
    assert spool.depth == 1
    await spool.close()


async def test_unwritable_disk_is_reported(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path, max_bytes=10_000)
    # Make the database refuse writes the way a failing disk would: read-only mode.
    spool._db.execute("PRAGMA query_only=ON")
    with pytest.raises(SpoolUnavailableError, match="not stored"):
        await spool.put(record(b"x"))
    assert spool.depth == 0
    spool._db.execute("PRAGMA query_only=OFF")
    await spool.close()
