"""Running the streams worker: one Faust worker per process, N processes under a supervisor.

Every process joins the same consumer group (the app id), so Kafka splits the partitions
among them, whether they run on one machine or many.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from qikflow.config import KafkaSettings
from qikflow.gc_tuning import tune_gc
from qikflow.supervisor import ChildSpec, Supervisor
from streams.settings import StreamsSettings

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 60.0  # each worker's time to commit and leave its groups after SIGTERM
EXIT_CONFIG = 78  # EX_CONFIG: a topic is too small, or a state topic wrongly partitioned


def run_worker(index: int, log_level: str) -> int:
    """Run worker `index` in this process until SIGTERM or SIGINT (then at most
    QIKFLOW_STREAMS_STOP_TIMEOUT_S more); EXIT_CONFIG when a topic is too small."""
    import mode.loop

    from qikflow.kafka_admin import resolve_cluster_defaults
    from streams.app import create_app
    from streams.budget import WorkerBudget
    from streams.errors import TopicPartitionsError, TopicTooSmallError
    from streams.router import RawRouter
    from streams.state import discard_stale_partitions, kafka_cluster_id
    from streams.stopping import BoundedStopWorker
    from streams.topics import prepare_topics

    kafka, settings = KafkaSettings(), StreamsSettings()
    mode.loop.use("uvloop")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # Faust creates its changelog topics itself: it needs the replication factor resolved.
    kafka = loop.run_until_complete(resolve_cluster_defaults(kafka))
    try:
        loop.run_until_complete(prepare_topics(kafka, WorkerBudget.from_settings(settings),
                                               settings=settings))
    except (TopicTooSmallError, TopicPartitionsError) as error:
        logger.error("worker %d NOT started, nothing was read: %s", index, error)
        return EXIT_CONFIG
    cluster_id = loop.run_until_complete(kafka_cluster_id(kafka))
    streams = create_app(kafka, settings, worker_index=index, cluster_id=cluster_id)
    # Every table: dedup's and the state folds' (`_state_table.py`).
    for table in streams.app.tables.values():
        loop.run_until_complete(discard_stale_partitions(kafka, table))
    # Stage 1 runs beside the Faust app in this process, started and stopped with it.
    router = RawRouter(streams, loop=loop)
    tune_gc()
    worker = BoundedStopWorker(
        streams.app, router, stop_timeout_s=settings.stop_timeout_s, loglevel=log_level,
        loop=loop, override_logging=False
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def supervise(workers: int, log_level: str) -> int:
    """Run `workers` worker processes; restart any that dies; stop all on SIGTERM/SIGINT.

    The workers stop together, each within STOP_TIMEOUT_S of the signal (then SIGKILL).
    Returns 0 when every worker stopped cleanly, else the first worker's other status.
    """
    return asyncio.run(_supervise(workers, log_level))


async def _supervise(workers: int, log_level: str) -> int:
    from qikflow.kafka_admin import ensure_topics
    from streams.budget import WorkerBudget
    from streams.topics import worker_topics

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    kafka = KafkaSettings()
    # The workers check the sizes; creating the topics once here spares them the race.
    await ensure_topics(kafka, worker_topics(kafka, WorkerBudget.from_settings(StreamsSettings())))
    specs = [
        ChildSpec(f"worker-{index}",
                  [sys.executable, "-m", "qikflow", "--log-level", log_level,
                   "worker", "--index", str(index)],
                  stop_timeout_s=STOP_TIMEOUT_S)
        for index in range(workers)
    ]
    # The workers write to this process's output, as one worker alone would.
    supervisor = Supervisor(specs, log_dir=None)
    await supervisor.start()
    await stop.wait()
    status = await supervisor.stop(in_order=False)
    logger.info("all %d workers stopped", workers)
    return status
