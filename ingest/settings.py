"""IngestSettings: every knob of the ingest service, read from `QIKFLOW_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
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
    max_body_memory_bytes: int = Field(
        16 * MIB,
        gt=0,
        description=(
            "Body bytes all requests of one process may hold in memory at once (declared "
            "`Content-Length`, else bytes read); a webhook that would go past gets a fast 503 "
            "with `Retry-After` instead of a slow answer."
        ),
    )
    max_header_bytes: int = Field(
        16 * 1024,
        gt=0,
        description=(
            "Largest request head: URL plus header names and values (4 bytes per header for "
            "`: ` and CRLF); larger is 431 and a closed connection."
        ),
    )
    max_header_count: int = Field(
        100, gt=0, description="Most header fields in one request; more is 431."
    )
    header_timeout_ms: int = Field(
        1000,
        gt=0,
        description=(
            "Time from the first byte of a request head to its end; slower is 408 and a "
            "closed connection. A connection that sends nothing is closed after uvicorn's "
            "keep-alive timeout (5 s), like an idle one between requests."
        ),
    )
    body_timeout_ms: int = Field(
        1000,
        gt=0,
        description=(
            "Time from the end of the headers to the end of the body; slower is 408 and a "
            "closed connection. A body the ingest answered without reading (401, 404, 413, "
            "503) must also end this soon after the answer, or the connection is closed."
        ),
    )
    max_connections: int | None = Field(
        None,
        gt=0,
        description=(
            "Open connections per process; more are closed as soon as they are accepted, so "
            "Kafka and the spool keep file descriptors. Default: the open-file limit minus 64."
        ),
    )
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

    @model_validator(mode="after")
    def _one_body_fits_in_memory(self) -> IngestSettings:
        if self.max_body_memory_bytes < self.max_body_bytes:
            raise ValueError(
                f"QIKFLOW_MAX_BODY_MEMORY_BYTES={self.max_body_memory_bytes} is below "
                f"QIKFLOW_MAX_BODY_BYTES={self.max_body_bytes}: a body at the limit could never "
                "be accepted; raise the first or lower the second"
            )
        return self

    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or StateSettings().home / "spool"
