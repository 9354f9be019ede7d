"""Settings shared by every qikflow service: where Kafka is and how to reach it."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qikflow._aiokafka_fix import refresh_metadata_on_stale_leader

refresh_metadata_on_stale_leader()

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
RAW_RETENTION_DEFAULT_MS = 7 * 24 * 3600 * 1000
RAW_RETENTION_MIN_MS = 3600 * 1000


class KafkaSettings(BaseSettings):
    """How every qikflow client (ingest, streams, sinks, CLI) connects to Kafka.

    Each field maps to a `QIKFLOW_KAFKA_*` variable; the security fields are
    passed unchanged to every aiokafka and Faust client, so a SASL/SSL cluster
    needs no code change.
    """

    model_config = SettingsConfigDict(
        env_prefix="QIKFLOW_KAFKA_", extra="ignore", populate_by_name=True
    )

    bootstrap: str = Field(
        DEFAULT_BOOTSTRAP,
        description="Comma-separated host:port list of Kafka brokers.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when security_protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certs.")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Private key of the client certificate.")
    topic_prefix: str = Field(
        "qikchat",
        validation_alias="QIKFLOW_TOPIC_PREFIX",
        description="Prefix of every topic qikflow reads or writes (`<prefix>.raw`, ...).",
    )
    topic_partitions: int = Field(
        6,
        ge=1,
        validation_alias="QIKFLOW_TOPIC_PARTITIONS",
        description=(
            "Partitions of every topic a qikflow process creates when it is missing; the "
            "keyed topic and the dedup table must keep this count once created."
        ),
    )
    topic_replication_factor: int | None = Field(
        None,
        ge=1,
        validation_alias="QIKFLOW_TOPIC_REPLICATION_FACTOR",
        description=(
            "Replication factor of every topic a qikflow process creates. Unset: the "
            "cluster's broker count, at most 3 (1 on a single broker, 3 on three or more)."
        ),
    )
    topic_min_insync_replicas: int | None = Field(
        None,
        ge=1,
        validation_alias="QIKFLOW_TOPIC_MIN_INSYNC_REPLICAS",
        description=(
            "`min.insync.replicas` of every topic a qikflow process creates: with acks=all, "
            "a write is acknowledged once this many replicas have it. Unset: 2 when the "
            "replication factor is 3 or more (a 200 survives the loss of any one broker), "
            "else 1."
        ),
    )

    raw_retention_ms: int = Field(
        RAW_RETENTION_DEFAULT_MS,
        validation_alias="QIKFLOW_RAW_RETENTION_MS",
        description=(
            "`retention.ms` of `<prefix>.raw`, the source of truth of every re-drive and "
            "trace: set when a qikflow process creates the topic; an existing topic that "
            "keeps records for less gets a WARNING at the worker's start. -1 keeps them for "
            "ever; otherwise at least an hour (the console's search window)."
        ),
    )

    @field_validator("raw_retention_ms")
    @classmethod
    def _retention_is_forever_or_an_hour(cls, value: int) -> int:
        if value != -1 and value < RAW_RETENTION_MIN_MS:
            raise ValueError(
                f"{value} ms would delete webhook bodies before a re-drive or trace can "
                f"reach them: use -1 (keep for ever) or at least {RAW_RETENTION_MIN_MS} "
                f"(an hour); the default is {RAW_RETENTION_DEFAULT_MS} (7 days)"
            )
        return value

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL and SASL_SSL, or None for plaintext."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return options


class StateSettings(BaseSettings):
    """Where local state lives: the Kafka jars and data, PostgreSQL, spools, the lake."""

    model_config = SettingsConfigDict(env_prefix="QIKFLOW_", extra="ignore")

    home: Path = Field(
        Path(".qikflow"),
        description="Directory for local state (git-ignored); relative to the working directory.",
    )
