"""Settings of the streams worker, read from `QIKFLOW_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from qikflow.config import StateSettings

MIB = 1024 * 1024


class StreamsSettings(BaseSettings):
    """How the Faust worker routes `<prefix>.raw`: topics, dedup window, batching, ports.

    Kafka connection and security come from `KafkaSettings`; this object only holds what
    is particular to the streams worker.
    """

    model_config = SettingsConfigDict(
        env_prefix="QIKFLOW_STREAMS_", extra="ignore", populate_by_name=True
    )

    max_body_bytes: int = Field(
        MIB,
        gt=0,
        validation_alias="QIKFLOW_MAX_BODY_BYTES",
        description=(
            "The ingest's body limit, read from the same variable: the worker sizes its "
            "topics and producers for the records a body this large makes (docs/topics.md)."
        ),
    )

    ingest_producer_batch_bytes: int = Field(
        MIB,
        gt=0,
        validation_alias="QIKFLOW_PRODUCER_MAX_BATCH_BYTES",
        description=(
            "The ingest's producer batch, read from the same variable: with "
            "QIKFLOW_MAX_BODY_BYTES it sizes `<prefix>.raw` when the worker creates it, "
            "exactly as the ingest would."
        ),
    )
    dedup_window_s: int = Field(
        86_400,
        ge=1,
        description="An event whose id was seen less than this many seconds ago is dropped.",
    )
    state_retention_s: int = Field(
        30 * 86_400,
        ge=86_400,
        description=(
            "How long the state of an outbound message is kept after its last change, in the "
            "message-state table and on `<prefix>.message.state`; a callback for a message "
            "older than this starts its state afresh."
        ),
    )
    window_retention_s: int = Field(
        7 * 86_400,
        ge=2 * 86_400,
        description=(
            "How long a contact's 24-hour window is kept after its last incoming message, in "
            "the contact-window table and on `<prefix>.contact.window`."
        ),
    )
    batch_size: int = Field(
        1000,
        ge=1,
        description="Most records the router reads, and an agent takes, per batch.",
    )
    batch_within_s: float = Field(
        0.05,
        gt=0,
        description=(
            "Longest a batch of the router or an agent stays open for more records while "
            "they keep arriving; a batch is handled as soon as no more are waiting (the "
            "router) or none arrived for 1 ms (the agents)."
        ),
    )
    keyed_bundle_max_bytes: int = Field(
        524_288,
        ge=16_384,
        le=900_000,
        description=(
            "Largest bundle of events the router packs into one record of the internal "
            "keyed topic; an event larger than this travels alone."
        ),
    )
    commit_interval_s: float = Field(
        1.0,
        gt=0,
        description=(
            "How often dedup and the agents commit processed offsets (at-least-once); "
            "the router commits after every batch."
        ),
    )
    producer_linger_ms: int = Field(
        5, ge=0, description="Producer linger: how long a record waits to fill a batch."
    )
    producer_max_batch_bytes: int = Field(
        1_048_576, ge=16_384, description="Largest producer batch per partition."
    )
    consumer_max_fetch_bytes: int = Field(
        4_194_304, ge=65_536, description="Most bytes fetched per partition per request."
    )
    standby_replicas: int = Field(
        1, ge=0, description="Standby copies of each dedup-table partition on other workers."
    )
    web_host: str = Field(
        "127.0.0.1",
        description=(
            "Interface the Faust web server (/metrics) listens on; `0.0.0.0` serves every "
            "interface, e.g. for a Prometheus on another host."
        ),
    )
    web_port: int = Field(
        6066,
        ge=1,
        le=65_535,
        description="Faust web port of worker 0 (serves /metrics); worker i uses web_port+i.",
    )
    stop_timeout_s: float = Field(
        20.0,
        gt=0,
        description=(
            "Longest a worker takes to stop after SIGTERM or SIGINT, whatever its agents are "
            "doing; then it exits at once, and what it had not committed is read again on "
            "the next start."
        ),
    )
    session_timeout_s: float = Field(
        10.0,
        ge=6,
        le=300,
        description=(
            "How long Kafka waits for a worker that stopped answering (killed, hung, cut "
            "off) before its partitions go to the other workers; heartbeats go every third "
            "of it. Kafka's bounds apply (group.min/max.session.timeout.ms, 6 s to 30 min)."
        ),
    )

    extra_agents: str = Field(
        "",
        description="Comma-separated modules with stream agents outside streams.agents.",
    )
    data_dir: Path = Field(
        default_factory=lambda: StateSettings().home / "streams",
        description=(
            "Where workers keep their RocksDB state: one folder per Kafka cluster id, "
            "consumer group and worker index."
        ),
    )

    @property
    def heartbeat_interval_s(self) -> float:
        return self.session_timeout_s / 3

    def extra_agent_modules(self) -> list[str]:
        return [name.strip() for name in self.extra_agents.split(",") if name.strip()]
