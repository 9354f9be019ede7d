"""Builds a sink and its driver from the environment, and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from qikflow.config import KafkaSettings
from qikflow.gc_tuning import tune_gc
from sinks.base import Sink
from sinks.settings import SinkSettings

logger = logging.getLogger(__name__)

SINKS = ("postgres", "lake")


class DatabaseUrlMissingError(RuntimeError):
    """QIKFLOW_DATABASE_URL is not set: a production sink never guesses its database."""


def database_url(settings: SinkSettings) -> str:
    """QIKFLOW_DATABASE_URL; a clear error saying how to set it when it is missing."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    raise DatabaseUrlMissingError(
        "QIKFLOW_DATABASE_URL is not set: set it to your PostgreSQL "
        "(postgresql://user:password@host:5432/db), or for a local server run "
        "`qikflow pg start` and `export QIKFLOW_DATABASE_URL=$(qikflow pg url)`; "
        "`qikflow up` does this for you"
    )


def build_sink(name: str, settings: SinkSettings) -> Sink:
    if name == "postgres":
        from sinks.postgres import PostgresSink

        return PostgresSink(database_url(settings))
    if name == "lake":
        from sinks.lake import LakeSink

        return LakeSink(
            settings.lake_dir, roll_bytes=settings.lake_roll_bytes,
            roll_interval_s=settings.lake_roll_interval_s,
            compact_min_files=settings.lake_compact_min_files,
            compact_interval_s=settings.lake_compact_interval_s,
        )
    raise ValueError(f"unknown sink {name!r}; choose one of {', '.join(SINKS)}")


async def run_sink(name: str, metrics_port: int | None = None) -> None:
    """Run one sink in this process until a signal asks it to stop."""
    from sinks.driver import SinkDriver

    settings = SinkSettings()
    kafka = KafkaSettings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    driver = SinkDriver(build_sink(name, settings), kafka=kafka, settings=settings, stop=stop)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=driver.metrics.registry)
        logger.info("%s sink metrics on http://0.0.0.0:%d/metrics", name, metrics_port)
    logger.info("%s sink: batches of up to %d records within %d ms, topics %s.*", name,
                settings.sink_batch_max_records, settings.sink_batch_within_ms,
                kafka.topic_prefix)
    tune_gc()  # the driver allocates per record: see qikflow/gc_tuning.py
    await driver.run()
