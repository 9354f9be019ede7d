"""Running the streams worker: one Faust worker per process, N processes under a supervisor.

Every process joins the same consumer group (the app id), so Kafka splits the partitions
among them, whether they run on one machine or many.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from qikflow.config import KafkaSettings
from streams.settings import StreamsSettings
from streams.topics import Topics

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
STOP_TIMEOUT_S = 60.0
# Allocations (minus frees) between two young-generation collections; Python's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def run_worker(index: int, log_level: str) -> int:
    """Run worker `index` in this process until SIGTERM or SIGINT."""
    import faust
    import mode.loop

    from streams._admin import ensure_topics
    from streams.app import create_app
    from streams.router import RawRouter

    kafka, settings = KafkaSettings(), StreamsSettings()
    mode.loop.use("uvloop")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(kafka, settings, Topics.from_settings(kafka)))
    streams = create_app(kafka, settings, worker_index=index)
    # Stage 1 runs beside the Faust app in this process, started and stopped with it.
    router = RawRouter(streams, loop=loop)
    tune_gc()
    worker = faust.Worker(
        streams.app, router, loglevel=log_level, loop=loop, override_logging=False
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def tune_gc() -> None:
    """Make Python's garbage collector cheap for a loop that allocates per event.

    Routing allocates a few dozen short-lived objects per event, so with the default
    thresholds the collector ran every few events and, every so often, scanned every
    object of the Faust app, the RocksDB bindings and the Kafka clients. py-spy found the
    time at allocation sites; tuning the collector made the worker ~25 % faster
    (bench/streams). Freezing what start-up created takes those objects out of every scan,
    and a larger first generation collects the short-lived ones in fewer, equally cheap
    passes. Reference counting frees almost everything anyway; the collector only finds
    cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


def supervise(workers: int, log_level: str) -> int:
    """Run `workers` worker processes; restart any that dies; stop all on SIGTERM/SIGINT."""
    from streams._admin import ensure_topics

    kafka, settings = KafkaSettings(), StreamsSettings()
    asyncio.run(ensure_topics(kafka, settings, Topics.from_settings(kafka)))
    supervisor = _Supervisor(workers, log_level)
    return supervisor.run()


class _Supervisor:
    def __init__(self, workers: int, log_level: str) -> None:
        self._count = workers
        self._log_level = log_level
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._delays: dict[int, float] = {}
        self._stopping = False

    def _spawn(self, index: int) -> None:
        command = [
            sys.executable, "-m", "qikflow", "--log-level", self._log_level,
            "worker", "--index", str(index),
        ]
        self._children[index] = subprocess.Popen(command, env=os.environ.copy())
        logger.info("started worker %d (pid %d)", index, self._children[index].pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for index in range(self._count):
            self._spawn(index)
        while not self._stopping:
            time.sleep(0.2)
            for index, child in list(self._children.items()):
                code = child.poll()
                if code is None or self._stopping:
                    continue
                delay = self._delays.get(index, RESTART_DELAY_S)
                logger.error(
                    "worker %d (pid %d) exited with %s; restarting in %.0f s",
                    index, child.pid, code, delay,
                )
                time.sleep(delay)
                self._delays[index] = min(delay * 2, MAX_RESTART_DELAY_S)
                self._spawn(index)
        return self._stop_all()

    def _stop_all(self) -> int:
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        status = 0
        for index, child in self._children.items():
            try:
                code = child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.error("worker %d did not stop in %.0f s; killing it", index, STOP_TIMEOUT_S)
                child.kill()
                code = child.wait()
            status = status or code
        logger.info("all %d workers stopped", self._count)
        return status
