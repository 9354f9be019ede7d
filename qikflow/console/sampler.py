"""The overview's figures: the processes' own `/metrics` and Kafka's offsets, read on a clock.

Nothing is counted twice: every figure is what a process or Kafka reports, read every
`sample_interval_s` and kept for 15 minutes so rates and charts can be drawn (a console
restart starts the charts afresh). One line is logged when a source stops answering and
one when it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from qikflow.console._kafka_probe import KafkaProbe
from qikflow.console.metrics import ConsoleMetrics
from qikflow.operations.pipeline import Pipeline

logger = logging.getLogger(__name__)

HISTORY_S = 15 * 60
# Processes start beside the console (`qikflow up`): one that has never answered is
# reported only once this long has passed.
START_GRACE_S = 30.0

# Prometheus sample -> series name; labels named here become part of the name.
_SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "qikflow_ingest_requests_total": ("ingest.requests", ("status",)),
    "qikflow_ingest_spool_depth": ("ingest.spool", ()),
    "qikflow_ingest_quarantine_bodies": ("ingest.quarantine", ()),
    "qikflow_ingest_spooled_total": ("ingest.spooled", ()),
    "qikflow_streams_raw_records_total": ("worker.raw", ()),
    "qikflow_streams_deduplicated_events_total": ("worker.deduplicated", ()),
    "qikflow_streams_dead_lettered_records_total": ("worker.dead_lettered", ()),
    "qikflow_sink_written_records_total": ("sink.written", ("sink",)),
    "qikflow_sink_dead_lettered_records_total": ("sink.dead_lettered", ("sink",)),
}


@dataclass
class Sample:
    """Every figure at one moment: series -> value, and which processes answered."""

    at: float
    values: dict[str, float] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def parse_metrics(text: str, values: dict[str, float]) -> None:
    """Add the figures of one `/metrics` text to `values` (several processes add up)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            known = _SERIES.get(sample.name)
            if known is None:
                continue
            name, labels = known
            key = ".".join([name, *(sample.labels.get(label, "") for label in labels)])
            values[key] = values.get(key, 0.0) + sample.value


class Sampler:
    """Reads every source each interval; `samples` holds the last 15 minutes."""

    def __init__(self, pipeline: Pipeline, targets: dict[str, str], interval_s: float,
                 timeout_s: float, metrics: ConsoleMetrics) -> None:
        self.targets = targets
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.lake_dir = pipeline.lake_dir
        self.kafka = KafkaProbe(pipeline, metrics)
        self.samples: deque[Sample] = deque(maxlen=int(HISTORY_S / interval_s) + 1)
        self._down: set[str] = set()
        self._seen: set[str] = set()
        self._started = time.monotonic()

    async def run(self) -> None:
        """Sample until cancelled."""
        # A new connection per read: a kept-alive one can be closed by the process's idle
        # timeout just as it is reused, which would read as the process being down.
        async with httpx.AsyncClient(timeout=self.timeout_s,
                                     limits=httpx.Limits(max_keepalive_connections=0)) as client:
            try:
                while True:
                    started = time.monotonic()
                    self.samples.append(await self.sample(client))
                    await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))
            finally:
                await self.kafka.close()

    async def sample(self, client: httpx.AsyncClient) -> Sample:
        sample = Sample(time.time())
        texts = await asyncio.gather(*(self._scrape(client, name, url)
                                       for name, url in self.targets.items()))
        for name, text in zip(self.targets, texts, strict=True):
            sample.up[name] = text is not None
            if text is not None:
                try:
                    parse_metrics(text, sample.values)
                except ValueError as error:
                    sample.errors.append(f"{name}: unreadable /metrics ({error})")
        await self.kafka.sample(sample.values, sample.errors)
        sample.values["lake.files"] = float(await asyncio.to_thread(_parquet_files, self.lake_dir))
        return sample

    async def _scrape(self, client: httpx.AsyncClient, name: str, url: str) -> str | None:
        try:
            response = await client.get(url)
            response.raise_for_status()
        except httpx.HTTPError as error:
            self.metrics.scrape_failures.labels(name).inc()
            early = name not in self._seen and time.monotonic() - self._started < START_GRACE_S
            if name not in self._down and not early:
                self._down.add(name)
                logger.warning("overview: %s does not answer at %s (%s); shown as down until "
                               "it does", name, url, type(error).__name__)
            return None
        self._seen.add(name)
        if name in self._down:
            self._down.discard(name)
            logger.info("overview: %s answers again at %s", name, url)
        return response.text


def _parquet_files(lake_dir: Path) -> int:
    return sum(1 for _ in lake_dir.rglob("*.parquet")) if lake_dir.exists() else 0
