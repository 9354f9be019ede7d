"""Supervisor: runs child processes, restarts the ones that crash, stops them all.

One class serves `qikflow up` (ingest, worker, sinks) and `qikflow worker --workers N`.
A child that exits is started again after a delay that doubles up to a ceiling and drops
back once the child has run `healthy_after_s`. Each child gets `QIKFLOW_PARENT_PID` (see
`qikflow/_parent.py`), so it stops when this process dies, even by SIGKILL. Spawn from the
main thread: Linux signals a child when the *thread* that forked it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qikflow._parent import PARENT_PID_ENV

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
HEALTHY_AFTER_S = 30.0  # a child that ran this long restarts after RESTART_DELAY_S again


@dataclass
class ChildSpec:
    """One supervised command."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout_s: float = 30.0


@dataclass
class ChildState:
    """A supervised child now: its process, how often it restarted, how it last ended."""

    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    last_delay_s: float | None = None  # the wait before the latest restart

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def describe(self) -> str:
        if self.running and self.process is not None:
            uptime = time.monotonic() - self.started_at
            text = f"running (pid {self.process.pid}, up {uptime:.0f}s"
        else:
            text = f"stopped (last exit {self.last_exit}"
        return text + (f", {self.restarts} restart(s))" if self.restarts else ")")


class Supervisor:
    """Keeps every child running until `stop()`.

    Each child writes to `<log_dir>/<name>.log`, or to this process's own output when
    `log_dir` is None. `on_spawn` is called after every start and restart of a child.
    """

    def __init__(
        self,
        children: list[ChildSpec],
        log_dir: Path | None,
        *,
        restart_delay_s: float = RESTART_DELAY_S,
        max_restart_delay_s: float = MAX_RESTART_DELAY_S,
        healthy_after_s: float = HEALTHY_AFTER_S,
        on_spawn: Callable[[ChildState], None] | None = None,
    ) -> None:
        self.children = [ChildState(spec) for spec in children]
        self.log_dir = log_dir
        self.restart_delay_s = restart_delay_s
        self.max_restart_delay_s = max_restart_delay_s
        self.healthy_after_s = healthy_after_s
        self._on_spawn = on_spawn
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            await self._spawn(child)
            self._watchers.append(asyncio.create_task(self._watch(child), name=child.spec.name))

    def log_path(self, name: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{name}.log"

    async def _spawn(self, child: ChildState) -> None:
        env = {**os.environ, **child.spec.env, PARENT_PID_ENV: str(os.getpid())}
        path = self.log_path(child.spec.name)
        with contextlib.ExitStack() as files:
            log = None if path is None else files.enter_context(open(path, "ab"))  # noqa: ASYNC230
            child.process = await asyncio.create_subprocess_exec(
                *child.spec.argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=None if log is None else asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children
            )
        child.started_at = time.monotonic()
        logger.info("started %s (pid %d): %s", child.spec.name, child.process.pid,
                    " ".join(child.spec.argv[1:]))
        if self._on_spawn is not None:
            self._on_spawn(child)

    async def _watch(self, child: ChildState) -> None:
        delay = self.restart_delay_s
        while True:
            assert child.process is not None
            try:
                code = await asyncio.wait_for(child.process.wait(), self.healthy_after_s)
            except TimeoutError:
                if delay > self.restart_delay_s:
                    logger.info("%s has run %.0fs since restart #%d; a crash now restarts it "
                                "after %.0fs again", child.spec.name, self.healthy_after_s,
                                child.restarts, self.restart_delay_s)
                delay = self.restart_delay_s
                code = await child.process.wait()
            child.last_exit = code
            if self._stopping:
                return
            child.restarts += 1
            child.last_delay_s = delay
            path = self.log_path(child.spec.name)
            logger.error("%s (pid %d) exited with code %s; restarting in %.1fs (restart #%d)%s",
                         child.spec.name, child.process.pid, code, delay, child.restarts,
                         f". Its log: {path}" if path else "")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_restart_delay_s)
            while True:
                try:
                    await self._spawn(child)
                    break
                except OSError as error:
                    logger.error("%s could not be started again (%s); next try in %.1fs",
                                 child.spec.name, error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_restart_delay_s)

    async def stop(self, *, in_order: bool = True) -> int:
        """Stop every child, SIGTERM then SIGKILL after its `stop_timeout_s`.

        In the order given, or all at once with `in_order=False`. Returns 0 when every
        child exited 0, else the first other status (128+N for a child ended by signal N).
        """
        self._stopping = True
        # No restart may race the stop: watchers go first (a half-started child is killed).
        for watcher in self._watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if in_order:
            for child in self.children:
                await self._stop_child(child)
        else:
            await asyncio.gather(*(self._stop_child(child) for child in self.children))
        statuses = (exit_status(child.last_exit) for child in self.children
                    if child.last_exit is not None)
        return next((status for status in statuses if status != 0), 0)

    async def _stop_child(self, child: ChildState) -> None:
        process = child.process
        if process is None:
            return
        if process.returncode is not None:
            child.last_exit = process.returncode
            return
        logger.info("stopping %s (pid %d)", child.spec.name, process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            child.last_exit = await asyncio.wait_for(process.wait(), child.spec.stop_timeout_s)
        except TimeoutError:
            logger.warning("%s did not stop within %.0fs; killing it", child.spec.name,
                           child.spec.stop_timeout_s)
            process.kill()
            child.last_exit = await process.wait()


def exit_status(returncode: int) -> int:
    """A child's return code as a shell shows it: a child ended by signal N is 128+N."""
    return 128 - returncode if returncode < 0 else returncode
