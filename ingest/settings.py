"""IngestSettings: every knob of the ingest service, read from `QIKFLOW_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from qikflow.config import StateSettings

MIB = 1024 * 1024


class IngestSettings(BaseSettings):
    """Settings of one ingest process. Built in the app factory, never at import time."""

    model_config = SettingsConfigDict(env_prefix="QIKFLOW_", extra="ignore")

    webhook_users: SecretStr | None = Field(
        None,
        description=(
            "Comma-separated `user:password` pairs accepted by Basic Auth. Several pairs let "
            "a credential be rotated without downtime."
        ),
    )
    webhook_users_file: Path | None = Field(
        None, description="File with one `user:password` per line (# comments allowed)."
    )
    allow_anonymous: bool = Field(
        False, description="Accept webhooks without credentials (warns at startup)."
    )
    max_body_bytes: int = Field(MIB, gt=0, description="Largest accepted body; larger is 413.")
    ack_timeout_ms: int = Field(
        1000,
        gt=0,
        description="How long a request waits for Kafka's acknowledgement before spooling.",
    )
    spool_dir: Path | None = Field(
        None, description="Directory of the local durable spool (default <home>/spool)."
    )
    spool_max_bytes: int = Field(
        1024 * MIB,
        gt=0,
        description=(
            "Hard limit of one process's spool file: everything stored (bodies, their "
            "headers, 32 bytes per entry), including writes still in flight; a body that "
            "would pass it gets 503."
        ),
    )
    drain_batch_size: int = Field(500, gt=0, description="Spooled bodies sent to Kafka at once.")
    drain_interval_ms: int = Field(
        250, gt=0, description="Pause between spool drain rounds and Kafka health probes."
    )
    drain_stall_timeout_ms: int = Field(
        15000,
        gt=0,
        description=(
            "With bodies spooled and Kafka answering metadata, a drain that moves nothing "
            "for this long replaces the Kafka producer (logged, counted)."
        ),
    )
    producer_linger_ms: int = Field(
        0,
        ge=0,
        description=(
            "Producer linger. 0 sends at once; records arriving while a request is in flight "
            "still share the next batch, and each webhook waits no longer than it must."
        ),
    )
    producer_max_batch_bytes: int = Field(
        1 * MIB, gt=0, description="Largest producer batch per partition."
    )
    source: str = Field(
        "qikchat", max_length=64, description="Source label stored with every record."
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description=(
            "Proxies whose X-Forwarded-For is trusted for the remote address "
            "(comma-separated IPs, or `*`)."
        ),
    )

    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or StateSettings().home / "spool"
