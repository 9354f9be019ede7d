"""Tests of ingest/drainer.py through the real `qikflow ingest`: spools of killed processes,
junk in the spool folder, and a drain that stalls while Kafka answers metadata."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ingest.settings import IngestSettings
from qikflow.local.kafka import LocalKafka
from tests.fixtures.kafka import consume
from tests.ingest._faults import Answer, lines, post_all, ready
from tests.ingest._proxy import CuttingProxy, ProxiedKafka
from tests.ingest._server import metric, start_ingest, wait_for


async def test_sigkill_under_load_loses_no_acknowledged_body(
    outage_env: dict[str, str], outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"
    server = start_ingest(outage_env, log)
    bodies = [f'{{"load":{i}}}'.encode() for i in range(600)]
    answered: list[Answer] = []
    load = asyncio.ensure_future(post_all(server.url, bodies, concurrency=30,
                                          progress=answered))
    # Kill once the load is under way, however slow the machine is to get there.
    deadline = asyncio.get_running_loop().time() + 30
    while len(answered) < 50 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    server.kill()
    first = await load
    acked = [a.body for a in first if a.status == 200]
    assert 0 < len(acked) < len(bodies), "the kill should land mid-load"

    # Second round: bodies accepted into the spool while Kafka is down, then SIGKILL.
    server = start_ingest(outage_env, log)
    outage_broker.stop()
    spooled = [f'{{"spooled":{i}}}'.encode() for i in range(40)]
    assert {a.status for a in await post_all(server.url, spooled)} == {200}
    server.kill()

    outage_broker.start()
    server = start_ingest(outage_env, log)  # adopts the orphaned spool and drains it
    try:
        assert wait_for(lambda: ready(server)["spool_depth"] == 0, timeout_s=60), server.log()
        expected = acked + spooled
        records = await consume(outage_broker.bootstrap, [f"{topic_prefix}.raw"],
                                expected=len(expected))
        missing = set(expected) - {r.value for r in records}
        assert not missing, f"{len(missing)} acknowledged bodies missing"
        assert "adopted spool" in log.read_text()
    finally:
        assert server.terminate() in (0, -15), server.log()


async def test_junk_in_the_spool_folder_never_holds_back_a_body(
    outage_env: dict[str, str], outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    spool_dir = Path(outage_env["QIKFLOW_SPOOL_DIR"])
    # A spool left by an ingest killed while Kafka was away, sorting after the junk.
    first = start_ingest(outage_env, tmp_path / "first.log")
    outage_broker.stop()
    left = [f'{{"left":{i}}}'.encode() for i in range(30)]
    assert {a.status for a in await post_all(first.url, left)} == {200}
    first.kill()
    outage_broker.start()
    (orphan,) = spool_dir.glob("spool-*.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{orphan}{suffix}").exists():
            os.rename(f"{orphan}{suffix}", spool_dir / f"spool-zz-1.sqlite{suffix}")
    Path(f"{orphan}.lock").unlink()
    for name in ("spool-aa-1.sqlite", "spool-mm-2.sqlite"):
        (spool_dir / name).write_bytes(os.urandom(8192))
    (spool_dir / "spool-empty-3.sqlite").write_bytes(b"")

    server = start_ingest(outage_env, tmp_path / "ingest.log")
    try:
        fresh = [f'{{"fresh":{i}}}'.encode() for i in range(30)]
        assert {a.status for a in await post_all(server.url, fresh)} == {200}
        assert wait_for(lambda: ready(server)["spool_depth"] == 0, timeout_s=60), server.log()
        records = await consume(outage_broker.bootstrap, [f"{topic_prefix}.raw"],
                                expected=len(left) + len(fresh))
        assert set(left + fresh) <= {r.value for r in records}
        errors = lines(server, "ERROR")
        assert len(errors) == 2, server.log()  # one line per junk file
        assert metric(server.url, "qikflow_ingest_spool_files_set_aside_total") == 2
        assert ready(server)["status"] == "ok"
    finally:
        assert server.terminate() in (0, -15), server.log()
    assert "Application shutdown complete" in server.log()
    # The next start is clean: nothing unreadable is left where spools are looked for.
    assert sorted(p.name for p in spool_dir.glob("spool-*")) == []
    again = start_ingest(outage_env, tmp_path / "again.log")
    assert again.terminate() in (0, -15), again.log()
    assert "ERROR" not in again.log()


async def test_a_drain_that_moves_nothing_replaces_the_producer_at_the_default_timeout(
    proxied: tuple[ProxiedKafka, CuttingProxy], topic_prefix: str, tmp_path: Path
) -> None:
    broker, proxy = proxied
    stall_s = IngestSettings().drain_stall_timeout_ms / 1000
    assert stall_s == 15.0
    env = {"QIKFLOW_KAFKA_BOOTSTRAP": broker.proxy_bootstrap,
           "QIKFLOW_WEBHOOK_USERS": "qikchat:s3cret",
           "QIKFLOW_SPOOL_DIR": str(tmp_path / "spool")}
    server = start_ingest(env, tmp_path / "ingest.log")
    try:
        before = [f'{{"before":{i}}}'.encode() for i in range(5)]
        assert {a.stored_in for a in await post_all(server.url, before)} == {"kafka"}
        # The producer's connections go dead without closing; new connections still get
        # metadata. Nothing fails fast, so only the watchdog can see it.
        assert proxy.cut_open_connections() >= 1
        stuck = [f'{{"stuck":{i}}}'.encode() for i in range(10)]
        assert {(a.status, a.stored_in) for a in await post_all(server.url, stuck)} == {
            (200, "spool")}
        assert wait_for(
            lambda: metric(server.url, "qikflow_ingest_producer_replacements_total"
                                       '{reason="drain_stalled"}') == 1,
            timeout_s=stall_s + 30), server.log()
        (replaced,) = lines(server, "moved nothing for")
        assert f"with {len(stuck)} bodies waiting, although Kafka answers metadata" in replaced
        assert wait_for(lambda: ready(server)["spool_depth"] == 0, timeout_s=60), server.log()
        records = await consume(broker.bootstrap, [f"{topic_prefix}.raw"],
                                expected=len(before) + len(stuck))
        assert set(before + stuck) <= {r.value for r in records}
        assert wait_for(lambda: ready(server)["status"] == "ok", timeout_s=30), ready(server)
        assert len(lines(server, "unavailable (")) == 1
        assert "never retrieved" not in server.log()
    finally:
        assert server.terminate() in (0, -15), server.log()
