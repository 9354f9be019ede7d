"""Tests of ingest/spools.py: one owner for the spools of a process, and their gauges."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from ingest.metrics import IngestMetrics
from ingest.record import RawRecord, new_receipt_id
from ingest.spool import Spool
from ingest.spools import Spools


def record(body: bytes, received_at_ms: int = 1) -> RawRecord:
    return RawRecord(body=body, receipt_id=new_receipt_id(), received_at_ms=received_at_ms)


def sample(metrics: IngestMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return float(value)


async def orphan(directory: Path, name: str, bodies: list[bytes]) -> Path:
    """A spool file left by a process that stopped (closed, lock released)."""
    spool = Spool.create(directory, max_bytes=10_000_000)
    for body in bodies:
        await spool.put(record(body))
    await spool.close()
    path = directory / name
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{spool.path}{suffix}").exists():
            Path(f"{spool.path}{suffix}").rename(f"{path}{suffix}")
    return path


async def test_gauges_follow_puts_and_removals(tmp_path: Path) -> None:
    metrics = IngestMetrics()
    spools = Spools(tmp_path, 10_000_000, metrics)
    assert sample(metrics, "qikflow_ingest_spool_depth") == 0
    assert spools.oldest_age_s() is None
    for _ in range(3):
        await spools.put(record(b"x" * 100, received_at_ms=1_000))
    assert sample(metrics, "qikflow_ingest_spool_depth") == 3
    assert sample(metrics, "qikflow_ingest_spool_bytes") == spools.bytes > 300
    age = spools.oldest_age_s()
    assert age is not None and age > 1_000_000  # received in 1970
    assert sample(metrics, "qikflow_ingest_spool_oldest_age_seconds") >= age - 1
    await spools.remove(spools.own, await spools.own.peek(10))
    assert sample(metrics, "qikflow_ingest_spool_depth") == 0
    assert sample(metrics, "qikflow_ingest_spool_bytes") == 0
    assert sample(metrics, "qikflow_ingest_spool_oldest_age_seconds") == 0
    await spools.close()


async def test_junk_files_are_set_aside_and_orphans_adopted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = await orphan(tmp_path, "spool-a-1.sqlite", [b"a1", b"a2"])
    (tmp_path / "spool-b-2.sqlite").write_bytes(b"this is no database" * 50)
    (tmp_path / "spool-c-3.sqlite").write_bytes(os.urandom(4096))
    last = await orphan(tmp_path, "spool-z-9.sqlite", [b"z1"])
    metrics = IngestMetrics()
    spools = Spools(tmp_path, 10_000_000, metrics)
    with caplog.at_level(logging.INFO, logger="ingest.spools"):
        spools.adopt_orphans(now=True)
    assert sorted(s.path for s in spools.adopted) == [first, last]
    assert spools.depth == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all("renamed to unreadable-" in r.getMessage() for r in errors)
    assert sample(metrics, "qikflow_ingest_spool_files_set_aside_total") == 2
    assert len(list(tmp_path.glob("unreadable-spool-*"))) == 2
    # Set aside once: the next pass neither finds nor logs them again.
    caplog.clear()
    spools.adopt_orphans(now=True)
    assert not [r for r in caplog.records if r.levelno == logging.ERROR]
    # Every spool with bodies gets the first turn in its round.
    firsts = {spools.in_turn()[0].path for _ in range(4)}
    assert firsts == {first, last}
    for spool in list(spools.adopted):
        await spools.remove(spool, await spool.peek(10))
    await spools.release_empty()
    assert spools.adopted == []
    assert not first.exists() and not last.exists()
    await spools.close()


async def test_a_junk_file_with_this_process_s_name_does_not_stop_the_start(
    tmp_path: Path,
) -> None:
    # Containers reuse pids: a file of our very name may be left, and may be junk.
    own = tmp_path / f"spool-{socket.gethostname()}-{os.getpid()}.sqlite"
    own.write_bytes(b"file is not a database" * 10)
    metrics = IngestMetrics()
    spools = Spools(tmp_path, 10_000, metrics)
    assert spools.own.path == own
    await spools.put(record(b"fresh"))
    assert spools.depth == 1
    assert len(list(tmp_path.glob("unreadable-*"))) == 1
    await spools.remove(spools.own, await spools.own.peek(1))
    await spools.close()


async def test_an_own_spool_that_breaks_is_replaced(tmp_path: Path) -> None:
    from ingest.errors import SpoolUnreadableError

    metrics = IngestMetrics()
    spools = Spools(tmp_path, 10_000, metrics)
    broken = spools.own
    await spools.set_aside(broken, SpoolUnreadableError("disk trouble"))
    assert spools.own is not broken and spools.own.path == broken.path
    await spools.put(record(b"after"))
    assert spools.depth == 1
    assert sample(metrics, "qikflow_ingest_spool_files_set_aside_total") == 1
    await spools.remove(spools.own, await spools.own.peek(1))
    await spools.close()
