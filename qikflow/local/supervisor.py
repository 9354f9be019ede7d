"""Supervisor: runs child processes, restarts the ones that crash, stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

RESTART_BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 30.0  # a child that ran this long gets its restart backoff reset


@dataclass
class ChildSpec:
    """One supervised command."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout_s: float = 30.0


@dataclass
class ChildState:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None

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
    """Keeps every child running until `stop()`; logs each child to `<log_dir>/<name>.log`."""

    def __init__(self, children: list[ChildSpec], log_dir: Path) -> None:
        self.children = [ChildState(spec) for spec in children]
        self.log_dir = log_dir
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            await self._spawn(child)
            self._watchers.append(asyncio.create_task(self._watch(child), name=child.spec.name))

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    async def _spawn(self, child: ChildState) -> None:
        with open(self.log_path(child.spec.name), "ab") as log:  # noqa: ASYNC230 - instant
            child.process = await asyncio.create_subprocess_exec(
                *child.spec.argv,
                env={**os.environ, **child.spec.env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children
            )
        child.started_at = time.monotonic()
        logger.info("started %s (pid %d): %s", child.spec.name, child.process.pid,
                    " ".join(child.spec.argv[1:]))

    async def _watch(self, child: ChildState) -> None:
        backoff = 1.0
        while True:
            assert child.process is not None
            code = await child.process.wait()
            child.last_exit = code
            if self._stopping:
                return
            if time.monotonic() - child.started_at > HEALTHY_AFTER_S:
                backoff = 1.0
            child.restarts += 1
            logger.error(
                "%s exited with code %s; restarting in %.0fs (restart #%d). Its log: %s",
                child.spec.name, code, backoff, child.restarts, self.log_path(child.spec.name),
            )
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX_S)
            await self._spawn(child)

    async def stop(self) -> None:
        """Stop children one by one in the order given, SIGTERM then SIGKILL."""
        self._stopping = True
        for child in self.children:
            await self._stop_child(child)
        for watcher in self._watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _stop_child(self, child: ChildState) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        logger.info("stopping %s (pid %d)", child.spec.name, process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), child.spec.stop_timeout_s)
        except TimeoutError:
            logger.warning("%s did not stop within %.0fs; killing it", child.spec.name,
                           child.spec.stop_timeout_s)
            process.kill()
            await process.wait()
