"""A one-line progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW_EVERY_S = 0.1


class Progress:
    """Shows sent / total, how many got 200, how many did not, and the send rate."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, done: int, acked: int, failed: int) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= REDRAW_EVERY_S or done >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(done, acked, failed, now))
                self.stream.flush()
            return
        decile = done * 10 // self.total
        if decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(self._line(done, acked, failed, now) + "\n")
            self.stream.flush()

    def close(self, done: int, acked: int, failed: int) -> None:
        if self.tty:
            self.stream.write("\r" + self._line(done, acked, failed, time.monotonic()) + "\n")
            self.stream.flush()
        elif done * 10 // self.total > self._last_decile:
            self.update(done, acked, failed)

    def _line(self, done: int, acked: int, failed: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        filled = min(WIDTH, done * WIDTH // self.total)
        bar = "#" * filled + "." * (WIDTH - filled)
        return (f"[{bar}] {done}/{self.total} sent, {acked} ok, {failed} not ok, "
                f"{done / elapsed:.0f}/s, {elapsed:.0f}s")
