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


def test_each_worker_gets_its_own_port_and_state_folder_in_the_prefix_group(
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap="broker-a:9092, broker-b:9092", topic_prefix="acme")
    streams = create_app(kafka, StreamsSettings(data_dir=tmp_path), worker_index=2)
    conf = streams.app.conf
    assert conf.id == Topics("acme").streams_group == streams.topics.streams_group
    assert [str(url) for url in conf.broker] == ["kafka://broker-a:9092", "kafka://broker-b:9092"]
    assert conf.web_port == StreamsSettings().web_port + 2
    assert Path(conf.datadir) == tmp_path / "worker-2"
    assert (tmp_path / "worker-2").is_dir()
    assert set(streams.app.agents) == {"dedup", "optout"}
    assert set(streams.app.tables) == {"dedup"}


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
