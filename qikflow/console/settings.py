"""ConsoleSettings: the operator console and the commands behind it (`trace`, `redrive`,
`replay`), read from `QIKFLOW_CONSOLE_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qikflow.config import StateSettings

DEFAULT_METRICS = "ingest=http://127.0.0.1:8080/metrics,worker=http://127.0.0.1:6066/metrics"


class ConsoleSettings(BaseSettings):
    """Settings of `qikflow console` and of `qikflow trace|redrive|replay`. Built when the
    command starts, never at import time."""

    model_config = SettingsConfigDict(env_prefix="QIKFLOW_CONSOLE_", extra="ignore")

    users: SecretStr | None = Field(
        None,
        description=(
            "Comma-separated `user:password` pairs who may log in (Basic Auth); two pairs "
            "rotate a credential without downtime. Separate from the webhook credentials."
        ),
    )
    users_file: Path | None = Field(
        None, description="File with one `user:password` per line (# comments allowed)."
    )
    allow_anonymous: bool = Field(
        False,
        description=(
            "Serve without credentials. Only on a loopback address (127.0.0.1, ::1): the "
            "console refuses to start with it on any other."
        ),
    )
    metrics: str = Field(
        DEFAULT_METRICS,
        description=(
            "The processes whose Prometheus `/metrics` the overview reads, as comma-separated "
            "`name=url` (e.g. `sink-postgres=http://10.0.0.5:9101/metrics`); `qikflow up` "
            "sets it to its children."
        ),
    )
    sample_interval_s: float = Field(
        5.0, ge=1.0, le=60.0,
        description="How often the overview reads the metrics and Kafka's offsets and lag.",
    )
    scrape_timeout_ms: int = Field(
        2000, ge=100, description="Longest wait for one process's `/metrics`; slower is down."
    )
    page_size: int = Field(
        50, ge=1, le=1000, description="Dead letters and messages listed per page."
    )
    page_scan_records: int = Field(
        20_000, ge=100,
        description=(
            "Most records one page of dead letters, or one search of a trace, reads from "
            "Kafka; a filter that matches rarely shows a partial page and a `next` link."
        ),
    )
    search_window_s: int = Field(
        3600, ge=60,
        description=(
            "How long after its receipt a webhook's records are looked for (trace, and the "
            "raw record of an event a re-drive sends again); longer spool outages need more."
        ),
    )
    audit_file: Path = Field(
        default_factory=lambda: StateSettings().home / "audit.jsonl",
        description="The audit trail of re-drives and replays (JSON lines, appended).",
    )

    @field_validator("metrics")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        metric_targets(value)
        return value

    def targets(self) -> dict[str, str]:
        return metric_targets(self.metrics)


def metric_targets(text: str) -> dict[str, str]:
    """`name=url,name=url` as a mapping; a ValueError naming the bad part."""
    targets: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, separator, url = part.partition("=")
        if not separator or not name.strip() or not url.strip().startswith(("http://",
                                                                          "https://")):
            raise ValueError(f"{part!r} is not `name=http://host:port/metrics`")
        targets[name.strip()] = url.strip()
    return targets
