"""The record of a running `qikflow up` (`<home>/up.json`): what it started, for `qikflow down`.

`qikflow up` writes it before it starts anything, rewrites it when a child restarts, and
removes it after its ordered stop. A record that outlives its `up` means that `up` was
killed: its children stop with it (they watch their parent), the local Kafka and
PostgreSQL it started do not, so the next `up` takes them over and `qikflow down` stops them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from qikflow.local._process import same_process, start_ticks
from qikflow.local.kafka import LocalKafka
from qikflow.local.postgres import LocalPostgres

RECORD_FILE = "up.json"


class StackRecordError(RuntimeError):
    """`<home>/up.json` exists but cannot be read; nothing was started or stopped."""


@dataclass
class ProcessRef:
    """One process of the stack, named by pid and start time (a pid alone can be reused)."""

    name: str
    pid: int
    ticks: int | None
    stop_timeout_s: float = 30.0

    @classmethod
    def of(cls, name: str, pid: int, stop_timeout_s: float = 30.0) -> ProcessRef:
        return cls(name, pid, start_ticks(pid), stop_timeout_s)

    def alive(self) -> bool:
        return same_process(self.pid, self.ticks)


@dataclass(frozen=True)
class ServiceRef:
    """A local Kafka or PostgreSQL that this stack started and so must stop."""

    kind: Literal["kafka", "postgres"]
    name: str
    port: int

    def instance(self, home: Path) -> LocalKafka | LocalPostgres:
        if self.kind == "kafka":
            return LocalKafka(home=home, name=self.name, port=self.port)
        return LocalPostgres(home=home, name=self.name, port=self.port)

    def running(self, home: Path) -> bool:
        service = self.instance(home)
        return service.pid() is not None if isinstance(service, LocalKafka) else service.running()

    def describe(self) -> str:
        return f"{'Kafka' if self.kind == 'kafka' else 'PostgreSQL'} {self.name!r} :{self.port}"


@dataclass
class StackRecord:
    """Who runs the stack (`up`), its children in stop order, the services it started."""

    up: ProcessRef
    started_at: str
    host: str
    port: int
    children: list[ProcessRef] = field(default_factory=list)
    services: list[ServiceRef] = field(default_factory=list)

    @classmethod
    def for_this_process(cls, host: str, port: int) -> StackRecord:
        return cls(ProcessRef.of("up", os.getpid()), time.strftime("%Y-%m-%d %H:%M:%S"),
                   host, port)

    @staticmethod
    def path(home: Path) -> Path:
        return home / RECORD_FILE

    @classmethod
    def read(cls, home: Path) -> StackRecord | None:
        """The record in `home`, or None when there is none."""
        path = cls.path(home)
        try:
            data = json.loads(path.read_text())
            return cls(
                up=ProcessRef(**data["up"]), started_at=data["started_at"], host=data["host"],
                port=data["port"], children=[ProcessRef(**c) for c in data["children"]],
                services=[ServiceRef(**s) for s in data["services"]],
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StackRecordError(
                f"cannot read {path} ({type(error).__name__}: {error}); if no qikflow up is "
                "running from this directory, delete that file"
            ) from error

    def write(self, home: Path) -> None:
        """Replace the record atomically: a reader never sees half of it."""
        home.mkdir(parents=True, exist_ok=True)
        partial = self.path(home).with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(self), indent=1) + "\n")
        partial.replace(self.path(home))

    @classmethod
    def remove(cls, home: Path) -> None:
        cls.path(home).unlink(missing_ok=True)

    def set_child(self, name: str, pid: int, stop_timeout_s: float) -> None:
        """Record the current process of child `name` (first start or restart)."""
        ref = ProcessRef.of(name, pid, stop_timeout_s)
        names = [child.name for child in self.children]
        if name in names:
            self.children[names.index(name)] = ref
        else:
            self.children.append(ref)

    def add_service(self, service: ServiceRef) -> None:
        if service not in self.services:
            self.services.append(service)

    def describe(self) -> str:
        return f"qikflow up (pid {self.up.pid}, started at {self.started_at})"

    def left_running(self) -> str | None:
        """What of this stack still runs, as one line with how to stop it; None if nothing."""
        if self.up.alive():
            return (f"a {self.describe()} stack is still running here, with the ingest on "
                    f"port {self.port}; stop it with `qikflow down`")
        children = [child for child in self.children if child.alive()]
        if children:
            names = ", ".join(f"{child.name} pid {child.pid}" for child in children)
            return (f"processes of an earlier {self.describe()} are still running ({names}); "
                    "stop them with `qikflow down`")
        return None

    def stop_budget_s(self) -> float:
        """How long an ordered stop of this stack may take: every child's, every service's."""
        return sum(child.stop_timeout_s for child in self.children) + 60.0 * (
            1 + len(self.services))
