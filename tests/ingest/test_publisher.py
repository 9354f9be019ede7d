"""Tests of ingest/publisher.py through the real `qikflow ingest`: Kafka or the spool, at the
defaults a user gets (1 MiB bodies, a raw topic qikflow creates, or one made beforehand
with Kafka's own defaults), records Kafka refuses, and a stopped broker."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ingest import record as raw
from ingest.quarantine import Quarantine
from ingest.raw_topic import TOPIC_LIMIT, RawTopicSize
from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings
from qikflow.kafka_admin import topic_configs
from qikflow.local.kafka import LocalKafka
from tests.fixtures.kafka import consume
from tests.ingest._faults import AUTH, lines, post_all, ready
from tests.ingest._server import metric, start_ingest, wait_for

MIB = 1024 * 1024
QIKCHAT_BUDGET_S = 2.0
SPOOL_DIR = "spool"


def shared_env(tmp_path: Path) -> dict[str, str]:
    """An ingest on the shared broker, everything else at its default."""
    return {"QIKFLOW_WEBHOOK_USERS": "qikchat:s3cret",
            "QIKFLOW_SPOOL_DIR": str(tmp_path / SPOOL_DIR)}


async def set_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  configs={name: value})])
    finally:
        await admin.close()
    kafka = KafkaSettings(bootstrap=bootstrap)
    for _ in range(100):
        if (await topic_configs(kafka, topic)).get(name) == value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic} did not take {name}={value}")


async def test_a_body_at_the_default_limit_reaches_kafka_with_capped_headers(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    server = start_ingest(shared_env(tmp_path), tmp_path / "ingest.log")
    try:
        at_limit = os.urandom(MIB)
        long_type = "application/json; profile=" + "p" * 8_000
        answers = await post_all(server.url, [at_limit], headers={"content-type": long_type})
        over = await post_all(server.url, [b"o" * (MIB + 1)])
        assert [(a.status, a.stored_in) for a in answers] == [(200, "kafka")]
        assert over[0].status == 413
        (record,) = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=1)
        assert record.value == at_limit
        content_type = dict(record.headers)[raw.CONTENT_TYPE]
        assert len(content_type) == raw.FIELD_CAPS_BYTES[raw.CONTENT_TYPE]
        assert long_type.encode().startswith(content_type)
        configs = await topic_configs(KafkaSettings(bootstrap=kafka_bootstrap),
                                      f"{topic_prefix}.raw")
        size = RawTopicSize.for_settings(IngestSettings())
        assert int(configs[TOPIC_LIMIT]) == size.max_message_bytes
    finally:
        assert server.terminate() in (0, -15), server.log()


@pytest.mark.parametrize(("own_limit", "max_body_bytes"),
                         [(False, None), (True, None), (True, 1_000_000)])
async def test_a_raw_topic_made_beforehand_with_kafkas_default_limit(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, own_limit: bool,
    max_body_bytes: int | None
) -> None:
    """Kafka's default limit (1048588) as the broker's default: the ingest sets its own on
    the topic and a body at 1 MiB is stored. The same limit set on the topic itself: at the
    default body limit the ingest refuses to start and says what to change; with a body
    limit that fits the topic, a body at that limit is stored."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        configs = {TOPIC_LIMIT: "1048588"} if own_limit else {}
        await admin.create_topics([NewTopic(f"{topic_prefix}.raw", 3, 1,
                                            topic_configs=configs)])
    finally:
        await admin.close()
    env = shared_env(tmp_path)
    if own_limit and max_body_bytes is None:
        server = start_ingest(env, tmp_path / "ingest.log", wait_ready=False)
        assert server.process.wait(60) == 3  # uvicorn: the application did not start
        refusal = lines(server, "ingest NOT started")
        assert len(refusal) == 1, server.log()
        assert f"--add-config {TOPIC_LIMIT}=" in refusal[0]
        assert "lower QIKFLOW_MAX_BODY_BYTES to at most" in refusal[0]
        assert not list((tmp_path / SPOOL_DIR).glob("spool-*"))
        return
    if max_body_bytes is not None:
        env |= {"QIKFLOW_MAX_BODY_BYTES": str(max_body_bytes),
                "QIKFLOW_PRODUCER_MAX_BATCH_BYTES": str(max_body_bytes)}
    server = start_ingest(env, tmp_path / "ingest.log")
    try:
        body = b"f" * (max_body_bytes or MIB)
        assert [(a.status, a.stored_in) for a in await post_all(server.url, [body])] == [
            (200, "kafka")]
        records = await consume(kafka_bootstrap, [f"{topic_prefix}.raw"], expected=1)
        assert [r.value for r in records] == [body]
        assert len(lines(server, "set no max.message.bytes of its own")) == (not own_limit)
    finally:
        assert server.terminate() in (0, -15), server.log()


async def test_a_record_kafka_refuses_is_quarantined_and_no_outage(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.raw"
    server = start_ingest(shared_env(tmp_path), tmp_path / "ingest.log")
    try:
        # An operator shrinks the topic after the start: Kafka now refuses large bodies.
        await set_topic_config(kafka_bootstrap, topic, TOPIC_LIMIT, "20000")
        refused = b"r" * 50_000
        small = [f'{{"n":{i}}}'.encode() for i in range(60)]
        answers = await post_all(server.url, [*small[:30], refused, *small[30:]])
        assert {a.status for a in answers} == {200}
        assert wait_for(lambda: ready(server)["quarantined"] == 1
                        and ready(server)["spool_depth"] == 0, timeout_s=60), server.log()
        records = await consume(kafka_bootstrap, [topic], expected=len(small))
        assert sorted({r.value for r in records}) == sorted(small)
        assert metric(server.url,
                      'qikflow_ingest_quarantined_total{reason="MessageSizeTooLargeError"}') == 1
        assert metric(server.url, "qikflow_ingest_quarantine_bodies") == 1
        assert metric(server.url, "qikflow_ingest_kafka_available") == 1
        assert not lines(server, "unavailable ("), server.log()
        assert len(lines(server, "quarantined body")) == 1
        # Connecting the new producer noticed the smaller topic: said once, not a stop.
        assert len(lines(server, "bodies Kafka refuses go to the quarantine")) == 1
        (entry,) = Quarantine(tmp_path / SPOOL_DIR).entries(with_bodies=True)
        assert entry.body == refused

        # Retried on request once the topic takes it again: it reaches Kafka.
        await set_topic_config(kafka_bootstrap, topic, TOPIC_LIMIT, str(2 * MIB))
        retry = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("qikflow")), "spool", "retry", "--all",
            env={**os.environ, "QIKFLOW_SPOOL_DIR": str(tmp_path / SPOOL_DIR)})
        assert await retry.wait() == 0
        assert wait_for(lambda: ready(server)["quarantined"] == 0
                        and ready(server)["spool_depth"] == 0, timeout_s=30), server.log()
        again = await consume(kafka_bootstrap, [topic], expected=len(records) + 1)
        assert refused in {r.value for r in again}
        assert len(lines(server, "adopted spool")) == 1
    finally:
        assert server.terminate() in (0, -15), server.log()


async def test_broker_outage_answers_within_budget_then_drains(
    outage_env: dict[str, str], outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    server = start_ingest(outage_env, tmp_path / "ingest.log")
    try:
        before = [f'{{"phase":"before","n":{i}}}'.encode() for i in range(20)]
        assert {a.status for a in await post_all(server.url, before)} == {200}
        assert ready(server)["status"] == "ok"

        outage_broker.stop()
        during = [f'{{"phase":"during","n":{i}}}'.encode() for i in range(60)]
        answers = await post_all(server.url, during)
        assert {a.status for a in answers} == {200}
        slowest = max(a.seconds for a in answers)
        assert slowest < QIKCHAT_BUDGET_S, f"slowest answer took {slowest:.2f}s"
        state = ready(server)
        assert (state["ready"], state["status"], state["kafka"]) == (True, "degraded",
                                                                     "unavailable")
        assert "unavailable" in state["reason"] and "wait in the spool" in state["reason"]
        assert state["spool_depth"] >= 1 and state["spool_oldest_age_s"] >= 0
        assert metric(server.url, "qikflow_ingest_spool_oldest_age_seconds") >= 0
        assert metric(server.url, 'qikflow_ingest_bodies_stored_total{where="spool"}') >= 1
        await asyncio.sleep(3)  # the idle ingest while Kafka is away: see the log below

        outage_broker.start()
        assert wait_for(lambda: ready(server)["spool_depth"] == 0, timeout_s=60), server.log()
        records = await consume(outage_broker.bootstrap, [f"{topic_prefix}.raw"],
                                expected=len(before) + len(during))
        assert set(before + during) <= {r.value for r in records}
        spooled = metric(server.url, 'qikflow_ingest_bodies_stored_total{where="spool"}')
        assert metric(server.url, "qikflow_ingest_drained_total") == spooled
        assert wait_for(lambda: ready(server)["status"] == "ok", timeout_s=30), ready(server)
        assert metric(server.url, "qikflow_ingest_kafka_available") == 1
        # One line when the outage began, one when it ended, with the counts, and no
        # warning in between (the client's connection errors are held back).
        log = server.log().splitlines()
        (began,) = [i for i, line in enumerate(log) if "unavailable (" in line]
        (ended,) = [i for i, line in enumerate(log) if "outage of" in line]
        assert f"{int(spooled)} bodies spooled meanwhile, {int(spooled)} drained" in log[ended]
        between = [line for line in log[began + 1:ended] if " WARNING " in line
                   or " ERROR " in line]
        assert not between, "\n".join(log)
        assert "never retrieved" not in server.log()
    finally:
        assert server.terminate() in (0, -15), server.log()


async def test_spool_full_answers_503_and_says_nothing_was_kept(
    outage_env: dict[str, str], outage_broker: LocalKafka, tmp_path: Path
) -> None:
    server = start_ingest({**outage_env, "QIKFLOW_SPOOL_MAX_BYTES": "400"},
                          tmp_path / "ingest.log")
    try:
        outage_broker.stop()
        async with httpx.AsyncClient(base_url=server.url, auth=AUTH, timeout=10) as client:
            fits = await client.post("/webhooks/qikchat", content=b"a" * 60)
            refused = await client.post("/webhooks/qikchat", content=b"b" * 60)
        assert fits.status_code == 200
        assert refused.status_code == 503
        assert refused.json()["error"] == "unavailable"
        assert "nothing was kept" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "5"
        assert metric(server.url, 'qikflow_ingest_rejected_total{reason="SpoolFullError"}') == 1
        assert "NOT stored" in server.log()
        state = ready(server)
        assert (state["ready"], state["status"]) == (False, "unavailable")
        assert httpx.get(f"{server.url}/readyz").status_code == 503
    finally:
        server.terminate()
        outage_broker.start()
