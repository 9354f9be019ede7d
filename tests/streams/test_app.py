"""The Faust app factory: one app per worker index, named for the prefix's group, with dedup
and every agent, and the same Kafka security settings as every aiokafka client."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
from pydantic import SecretStr

from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from streams.app import create_app, credentials
from streams.settings import StreamsSettings


def test_each_worker_gets_its_own_port_and_state_folder_of_its_cluster_and_group(
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap="broker-a:9092, broker-b:9092", topic_prefix="acme")
    streams = create_app(kafka, StreamsSettings(data_dir=tmp_path), worker_index=2,
                         cluster_id="zczrUjk5RdOk6EpCm7IdEg")
    conf = streams.app.conf
    assert conf.id == Topics("acme").streams_group == streams.topics.streams_group
    assert [str(url) for url in conf.broker] == ["kafka://broker-a:9092", "kafka://broker-b:9092"]
    assert conf.web_port == StreamsSettings().web_port + 2
    state = tmp_path / "cluster-zczrUjk5RdOk6EpCm7IdEg" / "acme-streams" / "worker-2"
    assert Path(conf.datadir) == state
    assert state.is_dir()
    assert set(streams.app.agents) == {"dedup", "optout", "optout-preferences"}
    assert set(streams.app.tables) == {"dedup", "message-state", "contact-window"}


def test_another_cluster_or_prefix_keeps_its_state_apart(tmp_path: Path) -> None:
    settings = StreamsSettings(data_dir=tmp_path)
    folders = {
        Path(create_app(KafkaSettings(topic_prefix=prefix), settings,
                        cluster_id=cluster).app.conf.datadir)
        for prefix, cluster in [("acme", "c1"), ("acme", "c2"), ("beta", "c1"),
                                ("acme", "../escape")]
    }
    assert len(folders) == 4
    assert all(folder.is_relative_to(tmp_path) for folder in folders)


def test_the_web_server_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    conf = create_app(KafkaSettings(), StreamsSettings(data_dir=tmp_path),
                      cluster_id="c1").app.conf
    assert (conf.web_bind, conf.web_host) == ("127.0.0.1", "127.0.0.1")
    shared = StreamsSettings(data_dir=tmp_path, web_host="0.0.0.0")
    assert create_app(KafkaSettings(), shared, cluster_id="c1").app.conf.web_bind == "0.0.0.0"


def test_the_producer_and_consumer_take_the_largest_record_of_the_budget(
    tmp_path: Path,
) -> None:
    streams = create_app(KafkaSettings(), StreamsSettings(data_dir=tmp_path), cluster_id="c1")
    conf, budget = streams.app.conf, streams.budget
    assert conf.producer_max_request_size == budget.agents_request_bytes
    assert conf.producer_max_request_size >= budget.event.batch_bytes
    assert conf.consumer_max_fetch_size >= budget.event.batch_bytes


def test_plaintext_needs_no_credentials() -> None:
    assert credentials(KafkaSettings(security_protocol="PLAINTEXT")) is None


def test_sasl_credentials_carry_the_user_and_the_default_mechanism() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="qikflow",
                          sasl_password=SecretStr("s3cret"))
    found = credentials(kafka)
    assert isinstance(found, faust.SASLCredentials)
    assert (found.username, found.password) == ("qikflow", "s3cret")
    assert found.mechanism.value == "PLAIN"
    assert found.ssl_context is None


def test_ssl_credentials_carry_the_tls_context() -> None:
    found = credentials(KafkaSettings(security_protocol="SSL"))
    assert isinstance(found, faust.SSLCredentials)
    assert isinstance(found.context, ssl.SSLContext)
    assert found.context.verify_mode == ssl.CERT_REQUIRED
