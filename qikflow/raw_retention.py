"""How long `<prefix>.raw` keeps webhook bodies: the source of truth of every re-drive and trace.

QIKFLOW_RAW_RETENTION_MS (`KafkaSettings.raw_retention_ms`, default 7 days) becomes the
topic's `retention.ms` when a qikflow process creates it (the ingest or the worker,
whichever starts first: both add `raw_topic_configs`). A topic that exists is never
changed, since its retention may have been chosen on purpose (disk, compliance): the
worker checks it at start and logs one WARNING when it keeps bodies for less.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from qikflow.config import KafkaSettings

logger = logging.getLogger(__name__)

RETENTION = "retention.ms"
FOREVER = -1
_UNITS = (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000), ("seconds", 1000))


def raw_topic_configs(kafka: KafkaSettings) -> dict[str, str]:
    """What a process creating `<prefix>.raw` adds to the topic's configuration."""
    return {RETENTION: str(kafka.raw_retention_ms)}


def span(retention_ms: int) -> str:
    """A retention as an operator reads it: `7 days`, `1 hour`, `for ever`."""
    if retention_ms < 0:
        return "for ever"
    for unit, size in _UNITS:
        if retention_ms >= size:
            count = round(retention_ms / size, 1)
            return f"{count:g} {unit if count != 1 else unit.removesuffix('s')}"
    return f"{retention_ms} ms"


def retention_shortfall(topic: str, configs: Mapping[str, str],
                        kafka: KafkaSettings) -> str | None:
    """Why `topic`, as the broker describes it (`configs`), keeps bodies for less than
    QIKFLOW_RAW_RETENTION_MS, in one line; None when it keeps them as long or longer."""
    wanted = kafka.raw_retention_ms
    value = configs.get(RETENTION, "")
    try:
        kept = int(value)
    except ValueError:
        return (f"Kafka at {kafka.bootstrap} did not report {RETENTION} of {topic} (got "
                f"{value!r}); cannot tell whether it keeps bodies for "
                f"QIKFLOW_RAW_RETENTION_MS={wanted} ({span(wanted)})")
    if kept == FOREVER or (wanted != FOREVER and kept >= wanted):
        return None
    return (
        f"{topic} keeps webhook bodies for {span(kept)} ({RETENTION}={kept}), less than "
        f"QIKFLOW_RAW_RETENTION_MS={wanted} ({span(wanted)}): a re-drive or trace cannot "
        f"reach further back. qikflow leaves an existing topic as it is: raise it "
        f"(kafka-configs.sh --bootstrap-server {kafka.bootstrap} --alter --entity-type "
        f"topics --entity-name {topic} --add-config {RETENTION}={wanted}) or lower the setting"
    )


def warn_if_short(topic: str, configs: Mapping[str, str], kafka: KafkaSettings) -> None:
    """One WARNING when `topic` keeps bodies for less than the setting asks."""
    shortfall = retention_shortfall(topic, configs, kafka)
    if shortfall is not None:
        logger.warning("%s", shortfall)
