"""Settings of the sinks: where the stores are, how records are batched and retried."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from qikflow.config import StateSettings


class SinkSettings(BaseSettings):
    """Read from `QIKFLOW_*` variables when a sink, `db migrate` or `stats` starts."""

    model_config = SettingsConfigDict(env_prefix="QIKFLOW_", extra="ignore")

    database_url: SecretStr | None = Field(
        None,
        description=(
            "PostgreSQL URL (`postgresql://user:pass@host:5432/db`); never logged. Required by "
            "`qikflow sink postgres` and `qikflow db migrate`; `qikflow up` sets it to the local "
            "server it starts (`qikflow pg url` prints that URL)."
        ),
    )
    lake_dir: Path = Field(
        default_factory=lambda: StateSettings().home / "lake",
        description="Root folder of the Parquet lake (`type=<type>/date=<YYYY-MM-DD>/*.parquet`).",
    )
    sink_batch_max_records: int = Field(
        5000, ge=1, description="Most records handed to one `write` call."
    )
    sink_batch_within_ms: int = Field(
        1000, ge=1,
        description=(
            "Longest wait, from the first record of a batch, before writing it anyway while "
            "more records wait in the topic; a sink that has caught up writes at once."
        ),
    )
    sink_retry_initial_ms: int = Field(
        200, ge=1, description="First backoff after a retriable write failure; doubles each try."
    )
    sink_retry_max_ms: int = Field(
        30_000, ge=1, description="Ceiling of the backoff between retries of a failed write."
    )
    sink_max_poll_interval_ms: int = Field(
        600_000, ge=10_000,
        description=(
            "Kafka max.poll.interval.ms: a sink retrying longer than this leaves its group and "
            "re-reads its uncommitted records on return (writes are idempotent)."
        ),
    )
    lake_roll_bytes: int = Field(
        64 * 1024 * 1024, ge=1,
        description="Staged JSON bytes of one `type/date` partition that make it roll to a file.",
    )
    lake_roll_interval_s: float = Field(
        300.0, gt=0,
        description="Longest a staged event waits before its partition rolls to a Parquet file.",
    )
    lake_compact_min_files: int = Field(
        6, ge=2,
        description=(
            "A partition with this many small files has them merged into one (a past day's "
            "partition as soon as it has two)."
        ),
    )
    lake_compact_interval_s: float = Field(
        600.0, gt=0, description="How often the lake sink looks for partitions to compact."
    )
