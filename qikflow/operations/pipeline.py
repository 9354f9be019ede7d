"""Where one pipeline keeps its records, as the operator actions need to find them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qikflow.config import KafkaSettings
from qikflow.topics import Topics


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Kafka and its topics, PostgreSQL, the lake folder and the ingest's spool folder."""

    kafka: KafkaSettings
    database_url: str | None
    lake_dir: Path
    spool_dir: Path

    @property
    def topics(self) -> Topics:
        return Topics.from_settings(self.kafka)

    @classmethod
    def from_env(cls) -> Pipeline:
        """From the `QIKFLOW_*` variables every process reads."""
        from ingest.settings import IngestSettings
        from sinks.settings import SinkSettings

        sinks = SinkSettings()
        url = sinks.database_url.get_secret_value() if sinks.database_url else None
        return cls(KafkaSettings(), url, sinks.lake_dir, IngestSettings().resolved_spool_dir())
