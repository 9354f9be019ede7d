"""CPU time of processes and of the machine, read from /proc: who used the cores in a run.

A benchmark on two shared cores measures the server only while the load generator leaves
it room, so each run prints what the generator itself used next to what the server used.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> tuple[int, int]:
    """(parent pid, user + system CPU ticks) from the text of /proc/<pid>/stat.

    The command name (field 2) is in parentheses and may itself hold spaces and ')': the
    fields that follow are counted from the last ')'.
    """
    fields = text[text.rindex(")") + 2:].split()
    # After the name: state(3) ppid(4) ... utime(14) stime(15), so ppid is fields[1].
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) `pid` has used so far; 0 once it is gone."""
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())[1] / TICKS_PER_S
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = parse_stat((entry / "stat").read_text())[0]
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    return parents


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and every living descendant (a supervisor's worker processes)."""
    parents = _parents()
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(process_cpu_s(member) for member in tree)


def parse_machine(text: str) -> tuple[int, int]:
    """(busy ticks, all ticks) over every core, from the 'cpu ' line of /proc/stat."""
    line = next(line for line in text.splitlines() if line.startswith("cpu "))
    values = [int(value) for value in line.split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    # already counted in user and nice.
    total = sum(values[:8])
    return total - values[3] - values[4], total


def machine_ticks() -> tuple[int, int]:
    return parse_machine((PROC / "stat").read_text())


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU used by named process trees, and by the whole machine, over `wall_s` seconds."""

    wall_s: float
    cpu_s: dict[str, float]
    machine_busy: float  # the share of all cores that was busy, 0 to 1

    def cores(self, name: str) -> float:
        """Cores `name` kept busy on average (1.0: one core all the time)."""
        return self.cpu_s[name] / self.wall_s if self.wall_s else 0.0


class CpuMeter:
    """`start()`, then `stop()`: the CPU each named process tree and the machine used between.

    A process that ends inside the window takes its CPU with it: meter long-lived ones.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._started = 0.0
        self._cpu: dict[str, float] = {}
        self._machine = (0, 0)

    def start(self) -> None:
        self._cpu = {name: tree_cpu_s(pid) for name, pid in self.pids.items()}
        self._machine = machine_ticks()
        self._started = time.monotonic()

    def stop(self) -> CpuUse:
        wall_s = time.monotonic() - self._started
        busy, total = machine_ticks()
        used = {name: tree_cpu_s(pid) - self._cpu[name] for name, pid in self.pids.items()}
        ticks = total - self._machine[1]
        return CpuUse(wall_s, used, (busy - self._machine[0]) / ticks if ticks else 0.0)
