"""Tests of ingest/quarantine.py and ingest/spool_cli.py (`qikflow spool status|export|retry`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ingest.quarantine import FILE_NAME, Quarantine
from ingest.record import RawRecord, new_receipt_id
from ingest.spool import Spool
from ingest.spool_file import encode_meta, summarize

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


def quarantined(directory: Path, body: bytes, reason: str = "MessageSizeTooLargeError()"
                ) -> RawRecord:
    record = RawRecord(body=body, receipt_id=new_receipt_id(), received_at_ms=5,
                       content_type="application/json")
    Quarantine.open(directory).put(record.receipt_id, encode_meta(record), body, reason)
    return record


def spool_command(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "QIKFLOW_SPOOL_DIR": str(directory)}
    return subprocess.run([QIKFLOW, "spool", *args], env=env, capture_output=True,
                          timeout=60, check=False)


def test_put_list_remove_keeps_bytes_and_one_copy_per_receipt(tmp_path: Path) -> None:
    body = bytes(range(256)) * 10
    record = quarantined(tmp_path, body)
    quarantine = Quarantine.open(tmp_path)
    quarantine.put(record.receipt_id, encode_meta(record), body, "again")  # a second copy
    (entry,) = quarantine.entries()
    assert (entry.receipt_id, entry.size, entry.body, entry.reason) == (
        record.receipt_id, len(body), b"", "MessageSizeTooLargeError()")
    (full,) = quarantine.entries([record.receipt_id], with_bodies=True)
    assert full.body == body
    assert orjson.loads(full.meta)["content_type"] == "application/json"
    quarantine.remove([record.receipt_id])
    assert quarantine.count() == 0


def test_an_unreadable_quarantine_is_set_aside_and_started_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"not sqlite" * 100)
    quarantine = Quarantine.open(tmp_path)
    assert quarantine.count() == 0
    assert "quarantine" in caplog.text and "renamed to unreadable-quarantine" in caplog.text
    assert len(list(tmp_path.glob("unreadable-quarantine.sqlite-*"))) == 1


def test_status_lists_spools_set_aside_files_and_the_quarantine(tmp_path: Path) -> None:
    async def leave_spool() -> Path:
        spool = Spool.create(tmp_path, max_bytes=10_000)
        await spool.put(RawRecord(b"waiting", new_receipt_id(), 1))
        await spool.close()
        return spool.path

    left = asyncio.run(leave_spool())
    (tmp_path / "spool-junk-7.sqlite").write_bytes(b"junk" * 10)
    (tmp_path / "unreadable-spool-old-1.sqlite-20250101T000000").write_bytes(b"x")
    record = quarantined(tmp_path, b"q" * 70)
    shown = spool_command(tmp_path, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    by_file = {s["file"]: s for s in status["spools"]}
    assert by_file[left.name]["state"] == "waiting for adoption"
    assert by_file[left.name]["bodies"] == 1
    assert by_file["spool-junk-7.sqlite"]["state"] == "unreadable"
    assert status["set_aside"] == ["unreadable-spool-old-1.sqlite-20250101T000000"]
    assert [(q["receipt_id"], q["bytes"]) for q in status["quarantine"]] == [
        (record.receipt_id, 70)]
    text = spool_command(tmp_path, "status")
    assert text.returncode == 0
    assert record.receipt_id.encode() in text.stdout
    assert b"UNREADABLE" in text.stdout
    # Status only reads: the junk file and the left spool are where they were.
    assert (tmp_path / "spool-junk-7.sqlite").exists()
    assert summarize(left).depth == 1


def test_export_writes_bodies_byte_for_byte(tmp_path: Path) -> None:
    bodies = [os.urandom(3000), b"\x00\xff{not json"]
    records = [quarantined(tmp_path, body) for body in bodies]
    one = spool_command(tmp_path, "export", records[0].receipt_id)
    assert one.returncode == 0 and one.stdout == bodies[0]
    assert spool_command(tmp_path, "export", records[1].receipt_id, "-o",
                         str(tmp_path / "b.bin")).returncode == 0
    assert (tmp_path / "b.bin").read_bytes() == bodies[1]
    out = tmp_path / "all"
    assert spool_command(tmp_path, "export", "--all", str(out)).returncode == 0
    for record, body in zip(records, bodies, strict=True):
        assert (out / f"{record.receipt_id}.body").read_bytes() == body
        headers = orjson.loads((out / f"{record.receipt_id}.json").read_bytes())
        assert headers["reason"] == "MessageSizeTooLargeError()"
    missing = spool_command(tmp_path, "export", "no-such-receipt")
    assert missing.returncode == 1 and b"not in the quarantine" in missing.stderr
    assert spool_command(tmp_path, "export").returncode == 2


def test_retry_hands_bodies_back_to_a_spool_for_adoption(tmp_path: Path) -> None:
    kept = quarantined(tmp_path, b"stays")
    retried = quarantined(tmp_path, b"goes back")
    done = spool_command(tmp_path, "retry", retried.receipt_id)
    assert done.returncode == 0, done.stderr
    assert b"1 bodies moved from the quarantine" in done.stdout
    assert [e.receipt_id for e in Quarantine.open(tmp_path).entries()] == [kept.receipt_id]

    async def adopt_all() -> list[RawRecord | None]:
        found = []
        for path in tmp_path.glob("spool-*.sqlite"):
            spool = Spool.adopt(path, max_bytes=10_000)
            assert spool is not None
            found += [e.record for e in await spool.peek(10)]
            await spool.close()
        return found

    assert asyncio.run(adopt_all()) == [retried]
    assert spool_command(tmp_path, "retry").returncode == 2
    assert spool_command(tmp_path, "retry", "nope").returncode == 1
    assert spool_command(tmp_path, "retry", "--all").returncode == 0
    assert Quarantine.open(tmp_path).count() == 0
